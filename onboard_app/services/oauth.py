"""Sign-in with GitHub and any OpenID Connect provider (authorization code + PKCE).

No Reflex import: the OAuth state (``onboard_app.state.oauth``) keeps the
:class:`PendingLogin` in a backend-only var between :func:`begin` (the button) and
:func:`complete` (the callback page), then hands the identity to
:func:`onboard_app.services.linking.sign_in_external`.

The protocol is authlib's framework-neutral client app (the one its Starlette integration
is built on, without the session storage): it builds the authorization URL, redeems the
code, loads the OIDC discovery document and the JWKS (again when an ID token names a key
it does not have) and validates the ID token (``CodeIDToken``). This module adds what
authlib leaves to its caller.

What is checked, in order, on the callback (RFC 9700, OpenID Connect Core 3.1.3.7):

* the pending login exists and is used once (the caller drops it before calling
  :func:`complete`), the returned ``state`` matches it, and it is at most
  :data:`PENDING_TTL` seconds old;
* OIDC: the response's ``iss`` (RFC 9207) is the issuer; it must be there when the
  discovery document advertises ``authorization_response_iss_parameter_supported``;
* ``error=`` from the provider, then the ``code``; every value taken from the callback
  query passes :func:`~onboard_app.services.text.clean_text` first, so a repeated value,
  a control character or a lone surrogate refuses the sign-in like any other bad value;
* the code is exchanged at the token endpoint with the PKCE verifier and the constant
  callback URL, the client authenticated as configured (OIDC:
  ``ONBOARD_OIDC_TOKEN_AUTH_METHOD``, else the first method of the discovery document we
  support); every network call has the configured timeout and runs on the event loop
  (authlib's async httpx client);
* GitHub: the numeric user id, the verified primary address of ``/user/emails``;
* OIDC: the ID token (at most :data:`MAX_ID_TOKEN` characters): its signature against the
  provider's JWKS with an algorithm the discovery document lists, never ``none`` or an
  HMAC one; ``iss`` exactly the discovery document's issuer, ``aud``, ``azp``,
  ``exp``/``iat``/``nbf`` (:data:`ID_TOKEN_LEEWAY`), ``at_hash`` when present, and the
  ``nonce`` (a login without one is refused before authlib, which would skip the check);
  a ``sub`` of plain text; the address only when ``email_verified`` is true.

The discovery document must name the issuer we asked for (OpenID Connect Discovery 4.3)
and is cut down to the fields used: authlib passes it to its HTTP client as keyword
arguments, where a field such as ``response_type`` or ``verify`` would change the
client. What the provider says about the user (names, subject, address, avatar) passes
the same text checks as what a browser sends.

Every failure is an :class:`OAuthError` whose ``code`` is one of :data:`MESSAGES`; the
user sees only the fixed message of that code, never text from the provider.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import BaseApp
from authlib.integrations.base_client.async_app import AsyncOAuth2Mixin
from authlib.integrations.base_client.async_openid import AsyncOpenIDMixin
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.errors import JoseError

from onboard_app.services.linking import ExternalIdentity
from onboard_app.services.oauth_errors import MESSAGES, OAuthError, message_for
from onboard_app.services.onboarding import MAX_NAME
from onboard_app.services.text import clean_text, has_bad_characters, safe_text
from onboard_app.services.users import normalise_email
from onboard_app.settings import TOKEN_AUTH_METHODS, OAuthClientSettings, Settings

try:  # authlib uses httpx2 when installed and falls back to httpx: catch what it raises.
    import httpx2 as _http  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    import httpx as _http  # type: ignore[no-redef]

__all__ = [
    "MESSAGES",
    "ExternalIdentity",
    "OAuthError",
    "PendingLogin",
    "begin",
    "clear_discovery_cache",
    "complete",
    "message_for",
    "provider_settings",
]

log = logging.getLogger("onboard.oauth")

#: Seconds a started login may take until the callback arrives.
PENDING_TTL: Final = 600
#: Seconds a provider's discovery document (and JWKS) is reused.
DISCOVERY_TTL: Final = 3600
#: Clock skew tolerated on ID-token time claims.
ID_TOKEN_LEEWAY: Final = 30
#: Longest ID token accepted (characters).
MAX_ID_TOKEN: Final = 16_384
#: Longest value accepted for a callback query parameter (``code``, ``state``, ``iss``...).
MAX_PARAM: Final = 4096
#: What a pending login is for: a sign-in, or proving again who a signed-in user is.
LOGIN: Final = "login"
REAUTHENTICATE: Final = "reauthenticate"
#: Seconds a re-authentication asks the provider to have seen the user log in (OIDC
#: ``max_age``); the ID token's ``auth_time`` is checked against it by the caller.
REAUTH_MAX_AGE: Final = 300
#: Longest OIDC ``sub`` and avatar URL kept (the ``users`` columns).
MAX_SUBJECT: Final = 255
MAX_AVATAR_URL: Final = 500
GITHUB_ACCEPT: Final = "application/vnd.github+json"
#: The discovery fields this module reads; the rest of the document is dropped.
DISCOVERY_FIELDS: Final = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "id_token_signing_alg_values_supported",
    "token_endpoint_auth_methods_supported",
    "authorization_response_iss_parameter_supported",
)


@dataclass(frozen=True)
class PendingLogin:
    """A started login, kept server-side until its callback arrives (once).

    Attributes:
        provider: ``github`` or ``oidc``.
        state: The one-time ``state`` sent to the provider.
        code_verifier: The PKCE verifier (the provider saw only its S256 challenge).
        nonce: The OIDC ``nonce`` (``None`` for GitHub).
        created_at: Unix time the login started.
        next_path: Where to go after login (already checked against the allow-list).
        purpose: :data:`LOGIN`, or :data:`REAUTHENTICATE` (a signed-in user proving who
            they are again, before deleting their account).
        user_id: For a re-authentication, the signed-in user who started it.

    """

    provider: str
    state: str
    code_verifier: str
    nonce: str | None
    created_at: float
    next_path: str | None = None
    purpose: str = LOGIN
    user_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a plain dict for a Reflex backend var."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> PendingLogin | None:
        """Rebuild a pending login from :meth:`to_dict` output; ``None`` if malformed.

        Args:
            data: What was stored (any type).

        Returns:
            The pending login, or ``None``.

        """
        if not isinstance(data, Mapping):
            return None
        try:
            pending = cls(
                provider=data["provider"],
                state=data["state"],
                code_verifier=data["code_verifier"],
                nonce=data.get("nonce"),
                created_at=float(data["created_at"]),
                next_path=data.get("next_path"),
                purpose=data.get("purpose", LOGIN),
                user_id=data.get("user_id"),
            )
        except (KeyError, TypeError, ValueError):
            return None
        texts = (pending.provider, pending.state, pending.code_verifier)
        if not all(isinstance(value, str) and value for value in texts):
            return None
        if pending.purpose not in (LOGIN, REAUTHENTICATE) or (
            pending.user_id is not None
            and (not isinstance(pending.user_id, int) or isinstance(pending.user_id, bool))
        ):
            return None
        return pending


def provider_settings(settings: Settings, provider: object) -> OAuthClientSettings | None:
    """Return the client settings of a configured provider, ``None`` for anything else.

    Args:
        settings: The app settings.
        provider: A provider name from the client (any type).

    Returns:
        The provider's settings, or ``None`` if it is unknown or not configured.

    """
    if provider == "github":
        return settings.github
    if provider == "oidc":
        return settings.oidc
    return None


# --- authlib's client app ------------------------------------------------------------


class _ProviderApp(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):
    """authlib's OAuth 2.0 / OpenID Connect client app, without a web framework."""

    client_cls = AsyncOAuth2Client


def _app(
    provider: OAuthClientSettings,
    *,
    metadata: dict[str, Any] | None = None,
    metadata_url: str | None = None,
    auth_method: str | None = None,
) -> _ProviderApp:
    """One provider's client app; ``metadata`` is the (shared) checked discovery document."""
    app = _ProviderApp(
        framework=None,
        name=provider.name,
        client_id=provider.client_id,
        client_secret=provider.client_secret or None,
        authorize_url=provider.authorize_url,
        access_token_url=provider.token_url,
        server_metadata_url=metadata_url,
        client_kwargs={
            "scope": provider.scope or None,
            "token_endpoint_auth_method": auth_method,
            "timeout": provider.timeout,
            "follow_redirects": False,
        },
    )
    if metadata is not None:
        # The cached dict itself: a JWKS authlib fetches later is stored in it for every login.
        app.server_metadata = metadata
    return app


async def _get_json(app: _ProviderApp, url: str, token: Mapping[str, Any], accept: str) -> Any:
    """GET a JSON document with the access token; map every failure to a code."""
    try:
        response = await app.get(url, token=token, headers={"Accept": accept})
    except _http.TransportError as exc:  # timeouts included
        raise OAuthError("unavailable") from exc
    except AuthlibBaseError as exc:  # a token authlib cannot send
        raise OAuthError("no_account_info") from exc
    if response.status_code >= 500:
        raise OAuthError("unavailable")
    if response.status_code != 200:
        raise OAuthError("no_account_info")
    try:
        return response.json()
    except ValueError as exc:
        raise OAuthError("no_account_info") from exc


# --- OIDC discovery ------------------------------------------------------------------


@dataclass
class _Discovery:
    metadata: dict[str, Any]
    fetched_at: float


_discovery_cache: dict[str, _Discovery] = {}


def clear_discovery_cache() -> None:
    """Forget every cached discovery document and JWKS (tests, key rotation)."""
    _discovery_cache.clear()


def _id_token_algorithms(document: Mapping[str, Any]) -> list[str]:
    """The signature algorithms the provider lists, without ``none`` and HMAC ones."""
    listed = document.get("id_token_signing_alg_values_supported")
    algorithms = [
        alg
        for alg in (listed if isinstance(listed, list) else [])
        if isinstance(alg, str) and alg != "none" and not alg.startswith("HS")
    ]
    return algorithms or ["RS256"]


async def _discover(provider: OAuthClientSettings, now: float) -> dict[str, Any]:
    """The provider's checked discovery document, cached per issuer for :data:`DISCOVERY_TTL`."""
    issuer = (provider.issuer or "").rstrip("/")
    cached = _discovery_cache.get(issuer)
    if cached is not None and now - cached.fetched_at < DISCOVERY_TTL:
        return cached.metadata
    app = _app(provider, metadata_url=f"{issuer}/.well-known/openid-configuration")
    try:
        document = await app.load_server_metadata()
    except (_http.HTTPError, ValueError, TypeError) as exc:  # unreachable, 4xx/5xx, not JSON
        raise OAuthError("unavailable") from exc
    needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    if (
        not all(isinstance(document.get(key), str) for key in needed)
        # OpenID Connect Discovery 4.3: the document must name the issuer we asked.
        or document["issuer"].rstrip("/") != issuer
    ):
        log.warning("oidc discovery document of %s is unusable", issuer)
        raise OAuthError("unavailable")
    metadata = {key: document[key] for key in DISCOVERY_FIELDS if key in document}
    metadata["id_token_signing_alg_values_supported"] = _id_token_algorithms(document)
    _discovery_cache[issuer] = _Discovery(metadata, now)
    return metadata


def _token_auth_method(provider: OAuthClientSettings, metadata: Mapping[str, Any]) -> str:
    """The configured method, else the provider's first one we support, else Basic."""
    if not provider.client_secret:
        return "none"  # a public client: PKCE only
    if provider.token_auth_method:
        return provider.token_auth_method
    supported = metadata.get("token_endpoint_auth_methods_supported")
    for method in supported if isinstance(supported, list) else []:
        if method in TOKEN_AUTH_METHODS:
            return str(method)
    return "client_secret_basic"  # the default of OpenID Connect Discovery


# --- Starting a login ----------------------------------------------------------------


async def begin(
    provider: OAuthClientSettings,
    callback_url: str,
    next_path: str | None = None,
    *,
    now: float | None = None,
    reauthenticate: int | None = None,
) -> tuple[str, PendingLogin]:
    """Start a login: the provider's authorization URL and what to keep until the callback.

    Args:
        provider: The provider's client settings.
        callback_url: The constant registered callback URL.
        next_path: Where to go after login (checked by the caller).
        now: Current Unix time (tests).
        reauthenticate: The id of a signed-in user who must prove who they are again:
            the provider is asked for a fresh login (OIDC ``prompt=login`` and
            ``max_age`` :data:`REAUTH_MAX_AGE`; GitHub, which has neither, its account
            picker), and the pending login says so.

    Returns:
        The URL to send the browser to, and the pending login to keep server-side.

    Raises:
        OAuthError: ``unavailable`` if the OIDC discovery document cannot be loaded.

    """
    now = time.time() if now is None else now
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43-128
    nonce: str | None = None
    metadata: dict[str, Any] | None = None
    extra: dict[str, str] = {}
    if provider.name == "oidc":
        metadata = await _discover(provider, now)
        nonce = secrets.token_urlsafe(32)
        extra["nonce"] = nonce
        if reauthenticate is not None:
            extra.update(prompt="login", max_age=str(REAUTH_MAX_AGE))
    elif reauthenticate is not None:
        extra["prompt"] = "select_account"
    # The S256 challenge is made here: authlib's app would log the verifier at debug level.
    authorization = await _app(provider, metadata=metadata).create_authorization_url(
        callback_url,
        state=state,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
        **extra,
    )
    purpose = LOGIN if reauthenticate is None else REAUTHENTICATE
    pending = PendingLogin(
        provider.name, state, verifier, nonce, now, next_path, purpose, reauthenticate
    )
    return authorization["url"], pending


# --- Completing a login --------------------------------------------------------------


def _param(query: Mapping[str, Any], name: str, refused: str) -> str | None:
    """A callback query value checked by :func:`clean_text`; ``None`` when it is absent.

    Raises:
        OAuthError: ``refused`` for a value that is not one plain string (repeated, too
            long, holding control characters or lone surrogates).
    """
    value = query.get(name)
    if value is None or value == "":
        return None
    cleaned = clean_text(value, max_chars=MAX_PARAM, strip=False)
    if not isinstance(cleaned, str) or len(cleaned) > MAX_PARAM:
        raise OAuthError(refused)
    return cleaned


def _check_state(
    provider: OAuthClientSettings,
    pending: PendingLogin | None,
    query: Mapping[str, Any],
    now: float,
) -> PendingLogin:
    """Check the callback's ``state`` against the pending login; return that login."""
    if pending is None:
        raise OAuthError("state_missing")
    returned_state = _param(query, "state", "state_mismatch")
    if returned_state is None:
        raise OAuthError("state_missing")
    if pending.provider != provider.name or not hmac.compare_digest(
        returned_state.encode(), pending.state.encode()
    ):
        raise OAuthError("state_mismatch")
    if not 0 <= now - pending.created_at <= PENDING_TTL:
        raise OAuthError("expired")
    return pending


def _check_issuer(query: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
    """RFC 9207: the response names the issuer we sent the user to (mix-up defence)."""
    returned = _param(query, "iss", "issuer_mismatch")
    advertised = metadata.get("authorization_response_iss_parameter_supported") in (True, "true")
    if returned is None and not advertised:
        return
    if returned != metadata["issuer"]:
        log.warning("oidc authorization response without the issuer %s", metadata["issuer"])
        raise OAuthError("issuer_mismatch")


def _check_response(query: Mapping[str, Any]) -> str:
    """Refuse an error response; return the authorization code."""
    if _param(query, "error", "provider_error") is not None:
        raise OAuthError("provider_error")
    code = _param(query, "code", "missing_code")
    if code is None:
        raise OAuthError("missing_code")
    return code


async def _exchange_code(
    app: _ProviderApp, callback_url: str, code: str, pending: PendingLogin
) -> dict[str, Any]:
    """Trade the code for tokens; map every failure to a code."""
    try:
        token = await app.fetch_access_token(
            callback_url, code=code, code_verifier=pending.code_verifier
        )
    except _http.TransportError as exc:  # timeouts included
        raise OAuthError("unavailable") from exc
    except (_http.HTTPStatusError, AuthlibBaseError, ValueError, TypeError, KeyError) as exc:
        # A 4xx/5xx answer, an ``error`` in the body, or a body that is not a token.
        raise OAuthError("token_error") from exc
    if not isinstance(token, Mapping) or not isinstance(token.get("access_token"), str):
        raise OAuthError("token_error")
    return dict(token)


async def complete(
    provider: OAuthClientSettings,
    pending: PendingLogin | None,
    callback_query: Mapping[str, Any],
    callback_url: str,
    *,
    now: float | None = None,
) -> ExternalIdentity:
    """Finish a login from the provider's callback.

    The caller must already have dropped ``pending`` from its store, so that a replayed
    callback finds nothing (``state_missing``).

    Args:
        provider: The provider's client settings.
        pending: The login started in this browser, or ``None`` if there is none.
        callback_query: The query parameters of the callback URL.
        callback_url: The constant registered callback URL (sent again to the token endpoint).
        now: Current Unix time for the pending login's age and the discovery cache (tests);
            ID-token times are checked against the clock.

    Returns:
        The identity the provider vouches for.

    Raises:
        OAuthError: On any failure (see :data:`MESSAGES` for the codes).

    """
    now = time.time() if now is None else now
    pending = _check_state(provider, pending, callback_query, now)
    if provider.name == "oidc":
        metadata = await _discover(provider, now)
        _check_issuer(callback_query, metadata)
        code = _check_response(callback_query)
        return await _complete_oidc(provider, metadata, pending, code, callback_url)
    return await _complete_github(provider, pending, _check_response(callback_query), callback_url)


def _name(value: object) -> str:
    return safe_text(value, max_chars=MAX_NAME)


def _email(value: object) -> str | None:
    if not isinstance(value, str) or has_bad_characters(value):
        return None
    return normalise_email(value)


def _avatar(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_AVATAR_URL or has_bad_characters(value):
        return None
    return value if value.startswith(("https://", "http://")) else None


async def _complete_github(
    provider: OAuthClientSettings, pending: PendingLogin, code: str, callback_url: str
) -> ExternalIdentity:
    # GitHub documents the client credentials as form fields of the token request.
    app = _app(provider, auth_method="client_secret_post")
    token = await _exchange_code(app, callback_url, code, pending)
    api = (provider.api_url or "").rstrip("/")
    profile = await _get_json(app, f"{api}/user", token, GITHUB_ACCEPT)
    if not isinstance(profile, dict):
        raise OAuthError("no_account_info")
    github_id = profile.get("id")
    if not isinstance(github_id, int) or isinstance(github_id, bool) or github_id <= 0:
        raise OAuthError("no_account_info")
    try:
        emails = await _get_json(app, f"{api}/user/emails", token, GITHUB_ACCEPT)
    except OAuthError as exc:
        if exc.code == "unavailable":
            raise
        emails = []  # the user:email scope was not granted: no address, not a failure
    email = None
    for entry in emails if isinstance(emails, list) else []:
        if (
            isinstance(entry, dict)
            and entry.get("primary") is True
            and entry.get("verified") is True
        ):
            email = _email(entry.get("email"))
            break
    return ExternalIdentity(
        provider="github",
        github_id=github_id,
        email=email,
        display_name=_name(profile.get("name")) or _name(profile.get("login")),
        avatar_url=_avatar(profile.get("avatar_url")),
    )


async def _complete_oidc(
    provider: OAuthClientSettings,
    metadata: dict[str, Any],
    pending: PendingLogin,
    code: str,
    callback_url: str,
) -> ExternalIdentity:
    app = _app(provider, metadata=metadata, auth_method=_token_auth_method(provider, metadata))
    token = await _exchange_code(app, callback_url, code, pending)
    claims = await _validated_id_token(app, provider, metadata, token, pending)
    if "email" not in claims or "name" not in claims:
        claims = await _with_userinfo(app, metadata, token, claims)
    email = None
    if claims.get("email_verified") in (True, "true"):
        email = _email(claims.get("email"))
    name = (
        _name(claims.get("name"))
        or _name(claims.get("preferred_username"))
        or _name(f"{_name(claims.get('given_name'))} {_name(claims.get('family_name'))}")
    )
    return ExternalIdentity(
        provider="oidc",
        oidc_issuer=(provider.issuer or "").rstrip("/"),
        oidc_subject=claims["sub"],
        email=email,
        display_name=name,
        avatar_url=_avatar(claims.get("picture")),
        auth_time=_auth_time(claims.get("auth_time")),
    )


def _auth_time(value: object) -> int | None:
    """The ID token's ``auth_time`` (when the user last logged in at the provider), if usable."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


async def _validated_id_token(
    app: _ProviderApp,
    provider: OAuthClientSettings,
    metadata: Mapping[str, Any],
    token: Mapping[str, Any],
    pending: PendingLogin,
) -> dict[str, Any]:
    """The ID token's claims, checked by authlib with our issuer, client and nonce."""
    id_token = token.get("id_token")
    # authlib compares the nonce only when it is given one: without one, refuse.
    if not isinstance(id_token, str) or len(id_token) > MAX_ID_TOKEN or not pending.nonce:
        raise OAuthError("invalid_id_token")
    try:
        claims = await app.parse_id_token(
            token,
            nonce=pending.nonce,
            claims_options={
                # Exactly the issuer of the discovery document (checked against ours).
                "iss": {"essential": True, "value": metadata["issuer"]},
                "aud": {"essential": True, "value": provider.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
            },
            leeway=ID_TOKEN_LEEWAY,
        )
    except _http.HTTPError as exc:  # the JWKS could not be loaded
        raise OAuthError("unavailable") from exc
    except (JoseError, AuthlibBaseError, ValueError, TypeError, KeyError) as exc:
        raise OAuthError("invalid_id_token") from exc
    subject = claims.get("sub")
    if (
        not isinstance(subject, str)
        or not subject
        or len(subject) > MAX_SUBJECT
        or has_bad_characters(subject)
    ):
        raise OAuthError("no_account_info")
    return dict(claims)


async def _with_userinfo(
    app: _ProviderApp,
    metadata: Mapping[str, Any],
    token: Mapping[str, Any],
    claims: dict[str, Any],
) -> dict[str, Any]:
    """Add the UserInfo claims the ID token lacks (only for the same ``sub``)."""
    endpoint = metadata.get("userinfo_endpoint")
    if not isinstance(endpoint, str):
        return claims
    try:
        info = await _get_json(app, endpoint, token, "application/json")
    except OAuthError:
        return claims  # the ID token alone is enough to sign in
    if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
        return claims
    merged = dict(info)
    merged.update(claims)
    if "email" not in claims and "email" in info:
        # The address and its verified flag must come from the same source.
        merged["email"] = info.get("email")
        merged["email_verified"] = info.get("email_verified")
    return merged
