"""Sign-in with GitHub and any OpenID Connect provider (authorization code + PKCE).

No Reflex import: the OAuth state (``onboard_app.state.oauth``) keeps the
:class:`PendingLogin` in a backend-only var between :func:`begin` (the button) and
:func:`complete` (the callback page), then calls :func:`sign_in_external`.

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
* OIDC: the ID token's signature against the provider's JWKS, ``iss``, ``aud``/``azp``,
  ``exp``/``iat``/``nbf`` and ``nonce`` (authlib's ``CodeIDToken``); the address only when
  ``email_verified`` is true.

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
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from onboard_app.models import User
from onboard_app.services.text import clean_text
from onboard_app.services.users import (
    EmailTaken,
    create_external_user,
    find_user_by_identity,
    normalise_email,
)
from onboard_app.settings import TOKEN_AUTH_METHODS, OAuthClientSettings, Settings

try:  # authlib uses httpx2 when installed and falls back to httpx: catch what it raises.
    import httpx2 as _http  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    import httpx as _http  # type: ignore[no-redef]

log = logging.getLogger("onboard.oauth")

#: Seconds a started login may take until the callback arrives.
PENDING_TTL: Final = 600
#: Seconds a provider's discovery document (and JWKS) is reused.
DISCOVERY_TTL: Final = 3600
#: Clock skew tolerated on ID-token time claims.
ID_TOKEN_LEEWAY: Final = 30
#: Longest value accepted for a callback query parameter (``code``, ``state``, ``iss``...).
MAX_PARAM: Final = 4096
GITHUB_ACCEPT: Final = "application/vnd.github+json"

#: The fixed user-facing message of every failure code.
MESSAGES: Final[dict[str, str]] = {
    "state_mismatch": "We could not verify this sign-in. Please try again.",
    "state_missing": "This sign-in link has expired or was already used. Please try again.",
    "expired": "The sign-in took too long. Please try again.",
    "issuer_mismatch": "We could not verify which provider answered this sign-in. "
    "Please try again.",
    "provider_error": "The sign-in was cancelled or refused by the provider.",
    "missing_code": "The provider did not complete the sign-in. Please try again.",
    "token_error": "The provider did not accept the sign-in. Please try again.",
    "unavailable": "The sign-in provider cannot be reached right now. Please try again later.",
    "invalid_id_token": "We could not verify the provider's answer. Please try again.",
    "no_account_info": "The provider did not share the account details we need.",
    "email_taken": "An account with this email already exists. Log in with your password.",
    "server_error": "We could not finish signing you in. Please try again in a moment.",
}


class OAuthError(Exception):
    """A sign-in with a provider failed.

    Attributes:
        code: One of the keys of :data:`MESSAGES`.

    """

    def __init__(self, code: str) -> None:
        """Remember the failure code.

        Args:
            code: One of the keys of :data:`MESSAGES`.

        """
        if code not in MESSAGES:
            raise ValueError(f"unknown OAuth error code {code!r}")
        super().__init__(code)
        self.code = code

    @property
    def message(self) -> str:
        """The user-facing message."""
        return MESSAGES[self.code]


def message_for(code: object) -> str:
    """Return the user-facing message of a failure code from a URL ("" for anything else).

    Args:
        code: The raw ``error`` query parameter of the login page (any type).

    Returns:
        The fixed message, or ``""`` for an unknown code.

    """
    return MESSAGES.get(code, "") if isinstance(code, str) else ""


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

    """

    provider: str
    state: str
    code_verifier: str
    nonce: str | None
    created_at: float
    next_path: str | None = None

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
            )
        except (KeyError, TypeError, ValueError):
            return None
        texts = (pending.provider, pending.state, pending.code_verifier)
        if not all(isinstance(value, str) and value for value in texts):
            return None
        return pending


@dataclass(frozen=True)
class ExternalIdentity:
    """Who the provider says signed in.

    Attributes:
        provider: ``github`` or ``oidc``.
        github_id: GitHub's numeric user id.
        oidc_issuer: The OIDC issuer.
        oidc_subject: The OIDC ``sub``.
        email: A verified, normalised address, or ``None``.
        display_name: Name to prefill onboarding with.
        avatar_url: Avatar image URL, or ``None``.

    """

    provider: str
    github_id: int | None = None
    oidc_issuer: str | None = None
    oidc_subject: str | None = None
    email: str | None = None
    display_name: str = ""
    avatar_url: str | None = None


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


# --- OIDC discovery ------------------------------------------------------------------


@dataclass
class _Discovery:
    document: dict[str, Any]
    fetched_at: float
    jwks: dict[str, Any] | None = None


_discovery_cache: dict[str, _Discovery] = {}


def clear_discovery_cache() -> None:
    """Forget every cached discovery document and JWKS (tests, key rotation)."""
    _discovery_cache.clear()


def _http_client(provider: OAuthClientSettings) -> _http.AsyncClient:
    return _http.AsyncClient(timeout=provider.timeout, follow_redirects=False)


async def _get_json(client: _http.AsyncClient, url: str, **kwargs: Any) -> Any:
    """GET a JSON document; transport failures become ``unavailable``."""
    try:
        response = await client.get(url, **kwargs)
    except _http.TransportError as exc:
        raise OAuthError("unavailable") from exc
    if response.status_code >= 500:
        raise OAuthError("unavailable")
    if response.status_code != 200:
        raise OAuthError("no_account_info")
    try:
        return response.json()
    except ValueError as exc:
        raise OAuthError("no_account_info") from exc


async def _discover(provider: OAuthClientSettings, now: float) -> _Discovery:
    """Load the provider's discovery document, cached per issuer for :data:`DISCOVERY_TTL`."""
    issuer = (provider.issuer or "").rstrip("/")
    cached = _discovery_cache.get(issuer)
    if cached is not None and now - cached.fetched_at < DISCOVERY_TTL:
        return cached
    async with _http_client(provider) as client:
        try:
            document = await _get_json(client, f"{issuer}/.well-known/openid-configuration")
        except OAuthError as exc:
            raise OAuthError("unavailable") from exc
    needed = ("authorization_endpoint", "token_endpoint", "jwks_uri")
    if (
        not isinstance(document, dict)
        # OpenID Connect Discovery 4.3: the document must name the issuer we asked.
        or str(document.get("issuer", "")).rstrip("/") != issuer
        or not all(isinstance(document.get(key), str) for key in needed)
    ):
        log.warning("oidc discovery document of %s is unusable", issuer)
        raise OAuthError("unavailable")
    entry = _Discovery(document, now)
    _discovery_cache[issuer] = entry
    return entry


async def _jwks(provider: OAuthClientSettings, discovery: _Discovery, *, force: bool) -> KeySet:
    if discovery.jwks is None or force:
        async with _http_client(provider) as client:
            try:
                document = await _get_json(client, discovery.document["jwks_uri"])
            except OAuthError as exc:
                raise OAuthError("unavailable") from exc
        if not isinstance(document, dict):
            raise OAuthError("invalid_id_token")
        discovery.jwks = document
    try:
        return KeySet.import_key_set(discovery.jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise OAuthError("invalid_id_token") from exc


# --- Starting a login ----------------------------------------------------------------


def _oauth_client(
    provider: OAuthClientSettings, callback_url: str, **extra: Any
) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret or None,
        scope=provider.scope or None,
        redirect_uri=callback_url,
        code_challenge_method="S256",
        timeout=provider.timeout,
        follow_redirects=False,
        **extra,
    )


async def begin(
    provider: OAuthClientSettings,
    callback_url: str,
    next_path: str | None = None,
    *,
    now: float | None = None,
) -> tuple[str, PendingLogin]:
    """Start a login: the provider's authorization URL and what to keep until the callback.

    Args:
        provider: The provider's client settings.
        callback_url: The constant registered callback URL.
        next_path: Where to go after login (checked by the caller).
        now: Current Unix time (tests).

    Returns:
        The URL to send the browser to, and the pending login to keep server-side.

    Raises:
        OAuthError: ``unavailable`` if the OIDC discovery document cannot be loaded.

    """
    now = time.time() if now is None else now
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43-128
    nonce: str | None = None
    extra: dict[str, str] = {}
    if provider.name == "oidc":
        discovery = await _discover(provider, now)
        authorize_url = discovery.document["authorization_endpoint"]
        nonce = secrets.token_urlsafe(32)
        extra["nonce"] = nonce
    else:
        authorize_url = provider.authorize_url or ""
    async with _oauth_client(provider, callback_url) as client:
        url, _ = client.create_authorization_url(
            authorize_url, state=state, code_verifier=verifier, **extra
        )
    pending = PendingLogin(provider.name, state, verifier, nonce, now, next_path)
    return url, pending


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


def _check_issuer(query: Mapping[str, Any], document: Mapping[str, Any]) -> None:
    """RFC 9207: the response names the issuer we sent the user to (mix-up defence)."""
    returned = _param(query, "iss", "issuer_mismatch")
    advertised = document.get("authorization_response_iss_parameter_supported") in (True, "true")
    if returned is None and not advertised:
        return
    if returned != document["issuer"]:
        log.warning("oidc authorization response without the issuer %s", document["issuer"])
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
    client: AsyncOAuth2Client, token_url: str, code: str, pending: PendingLogin
) -> dict[str, Any]:
    """Trade the code for tokens; map every failure to a code."""
    try:
        token = await client.fetch_token(token_url, code=code, code_verifier=pending.code_verifier)
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
        now: Current Unix time (tests).

    Returns:
        The identity the provider vouches for.

    Raises:
        OAuthError: On any failure (see :data:`MESSAGES` for the codes).

    """
    now = time.time() if now is None else now
    pending = _check_state(provider, pending, callback_query, now)
    if provider.name == "oidc":
        discovery = await _discover(provider, now)
        _check_issuer(callback_query, discovery.document)
        code = _check_response(callback_query)
        return await _complete_oidc(provider, discovery, pending, code, callback_url, now)
    return await _complete_github(provider, pending, _check_response(callback_query), callback_url)


def _text(value: object, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _avatar(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 500:
        return None
    return value if value.startswith(("https://", "http://")) else None


async def _complete_github(
    provider: OAuthClientSettings, pending: PendingLogin, code: str, callback_url: str
) -> ExternalIdentity:
    # GitHub documents the client credentials as form fields of the token request.
    async with _oauth_client(
        provider,
        callback_url,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 (a method name)
    ) as client:
        await _exchange_code(client, provider.token_url or "", code, pending)
        api = (provider.api_url or "").rstrip("/")
        headers = {"Accept": GITHUB_ACCEPT}
        profile = await _authorized_json(client, f"{api}/user", headers)
        if not isinstance(profile, dict):
            raise OAuthError("no_account_info")
        github_id = profile.get("id")
        if not isinstance(github_id, int) or isinstance(github_id, bool) or github_id <= 0:
            raise OAuthError("no_account_info")
        try:
            emails = await _authorized_json(client, f"{api}/user/emails", headers)
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
            email = normalise_email(entry.get("email"))
            break
    login = _text(profile.get("login"), 80)
    return ExternalIdentity(
        provider="github",
        github_id=github_id,
        email=email,
        display_name=_text(profile.get("name"), 80) or login,
        avatar_url=_avatar(profile.get("avatar_url")),
    )


async def _authorized_json(client: AsyncOAuth2Client, url: str, headers: dict[str, str]) -> Any:
    """GET with the access token (the OAuth client adds it); map failures to codes."""
    return await _get_json(client, url, headers=headers)


def _token_auth_method(provider: OAuthClientSettings, document: Mapping[str, Any]) -> str:
    """The configured method, else the provider's first one we support, else Basic."""
    if not provider.client_secret:
        return "none"  # a public client: PKCE only
    if provider.token_auth_method:
        return provider.token_auth_method
    supported = document.get("token_endpoint_auth_methods_supported")
    for method in supported if isinstance(supported, list) else []:
        if method in TOKEN_AUTH_METHODS:
            return str(method)
    return "client_secret_basic"  # the default of OpenID Connect Discovery


async def _complete_oidc(
    provider: OAuthClientSettings,
    discovery: _Discovery,
    pending: PendingLogin,
    code: str,
    callback_url: str,
    now: float,
) -> ExternalIdentity:
    document = discovery.document
    async with _oauth_client(
        provider, callback_url, token_endpoint_auth_method=_token_auth_method(provider, document)
    ) as client:
        token = await _exchange_code(client, document["token_endpoint"], code, pending)
        claims = await _validated_id_token(provider, discovery, token, pending, now)
        if "email" not in claims or "name" not in claims:
            claims = await _with_userinfo(client, document, claims)
    subject = claims["sub"]
    email = None
    if claims.get("email_verified") in (True, "true"):
        email = normalise_email(claims.get("email"))
    name = (
        _text(claims.get("name"), 80)
        or _text(claims.get("preferred_username"), 80)
        or _text(
            f"{_text(claims.get('given_name'), 40)} {_text(claims.get('family_name'), 40)}", 80
        )
    )
    return ExternalIdentity(
        provider="oidc",
        oidc_issuer=(provider.issuer or "").rstrip("/"),
        oidc_subject=subject,
        email=email,
        display_name=name,
        avatar_url=_avatar(claims.get("picture")),
    )


async def _validated_id_token(
    provider: OAuthClientSettings,
    discovery: _Discovery,
    token: Mapping[str, Any],
    pending: PendingLogin,
    now: float,
) -> dict[str, Any]:
    """Verify the ID token as authlib's OpenID client does, with our issuer and nonce."""
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or len(id_token) > 16_384:
        raise OAuthError("invalid_id_token")
    algorithms = [
        alg
        for alg in discovery.document.get("id_token_signing_alg_values_supported") or ["RS256"]
        if isinstance(alg, str) and alg != "none" and not alg.startswith("HS")
    ]
    registry = JWSRegistry(algorithms=algorithms or ["RS256"], strict_check_header=False)
    try:
        try:
            decoded = jwt.decode(
                id_token, await _jwks(provider, discovery, force=False), registry=registry
            )
        except InvalidKeyIdError:  # the provider may have rotated its keys
            decoded = jwt.decode(
                id_token, await _jwks(provider, discovery, force=True), registry=registry
            )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                # Exactly the issuer of the discovery document (checked against ours).
                "iss": {"essential": True, "value": discovery.document["issuer"]},
                "aud": {"essential": True, "value": provider.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
            },
            {
                "nonce": pending.nonce,
                "client_id": provider.client_id,
                "access_token": token.get("access_token"),
            },
        )
        claims.validate(now=int(now), leeway=ID_TOKEN_LEEWAY)
    except OAuthError:
        raise
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise OAuthError("invalid_id_token") from exc
    if not pending.nonce or claims.get("nonce") != pending.nonce:
        raise OAuthError("invalid_id_token")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise OAuthError("no_account_info")
    return dict(claims)


async def _with_userinfo(
    client: AsyncOAuth2Client, document: Mapping[str, Any], claims: dict[str, Any]
) -> dict[str, Any]:
    """Add the UserInfo claims the ID token lacks (only for the same ``sub``)."""
    endpoint = document.get("userinfo_endpoint")
    if not isinstance(endpoint, str):
        return claims
    try:
        info = await _authorized_json(client, endpoint, {"Accept": "application/json"})
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


# --- Accounts ------------------------------------------------------------------------


def sign_in_external(identity: ExternalIdentity, url: str | None = None) -> User:
    """Return the account of a provider identity, created on its first sign-in.

    An identity is never linked to an existing account by email: if the verified address
    already belongs to another account, nothing is created and ``email_taken`` is raised.

    Args:
        identity: What :func:`complete` returned.
        url: Database URL (default: configured).

    Returns:
        The user row.

    Raises:
        OAuthError: ``email_taken`` if another account uses the address.

    """
    keys: dict[str, Any] = (
        {"github_id": identity.github_id}
        if identity.github_id is not None
        else {"oidc_issuer": identity.oidc_issuer, "oidc_subject": identity.oidc_subject}
    )
    if identity.github_id is None and not (identity.oidc_issuer and identity.oidc_subject):
        raise OAuthError("no_account_info")
    user = find_user_by_identity(**keys, url=url)
    if user is not None:
        return user
    try:
        return create_external_user(
            email=identity.email,
            display_name=identity.display_name,
            avatar_url=identity.avatar_url,
            **keys,
            url=url,
        )
    except EmailTaken:
        # Two callbacks of one new identity racing: the other one created the account.
        user = find_user_by_identity(**keys, url=url)
        if user is not None:
            return user
        raise OAuthError("email_taken") from None
