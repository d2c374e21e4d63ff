"""The OAuth / OpenID Connect service over real HTTP: a GitHub fake and ``oauth2-mock-server``.

Nothing of authlib is mocked: the service's own client talks to the fakes, which check
client credentials, the redirect URI and the PKCE verifier like the real providers do.
The browser's part (following the authorization redirect) is one plain HTTP GET.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from onboard_app.models import User
from onboard_app.services import linking, oauth, oauth_errors
from onboard_app.services.db import get_engine
from onboard_app.services.linking import sign_in_external
from onboard_app.services.oauth import (
    ExternalIdentity,
    OAuthError,
    PendingLogin,
    begin,
    complete,
    message_for,
)
from onboard_app.services.users import create_local_user
from onboard_app.settings import (
    TOKEN_AUTH_METHODS,
    OAuthClientSettings,
    Settings,
    SettingsError,
    load_settings,
)
from tests.fakes.github import GitHubFake, GitHubUser
from tests.fakes.oidc import OidcProvider, start_oidc_provider

GITHUB_CALLBACK = "http://localhost:3000/auth/callback/github"
OIDC_CALLBACK = "http://localhost:3000/auth/callback/oidc"
HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"  # never verified


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def github_server() -> Iterator[GitHubFake]:
    with GitHubFake(redirect_uri=GITHUB_CALLBACK) as fake:
        yield fake


@pytest.fixture
def github(github_server: GitHubFake) -> GitHubFake:
    github_server.reset()
    return github_server


def github_settings(fake: GitHubFake, **changes: Any) -> OAuthClientSettings:
    values: dict[str, Any] = {
        "name": "github",
        "label": "Sign in with GitHub",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "authorize_url": fake.authorize_url,
        "token_url": fake.token_url,
        "api_url": fake.base_url,
        "scope": "read:user user:email",
        "timeout": 5.0,
    }
    values.update(changes)
    return OAuthClientSettings(**values)


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    provider = start_oidc_provider(tmp_path_factory.mktemp("oidc"))
    yield provider
    provider.stop()


@pytest.fixture
def oidc(oidc_server: OidcProvider) -> Iterator[OidcProvider]:
    oidc_server.reset()
    oauth.clear_discovery_cache()
    yield oidc_server
    oidc_server.reset()


def oidc_settings(provider: OidcProvider, **changes: Any) -> OAuthClientSettings:
    values: dict[str, Any] = {
        "name": "oidc",
        "label": "Sign in with Acme ID",
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "issuer": provider.issuer,
        "scope": "openid email profile",
        "timeout": 5.0,
    }
    values.update(changes)
    return OAuthClientSettings(**values)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def browser_visit(authorize_url: str) -> dict[str, str]:
    """What the browser does: open the authorization URL, read where it is sent back."""
    response = httpx.get(authorize_url, follow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return query_of(response.headers["location"])


def start(settings: OAuthClientSettings, callback: str) -> tuple[str, PendingLogin]:
    return asyncio.run(begin(settings, callback))


def finish(
    settings: OAuthClientSettings,
    pending: PendingLogin | None,
    query: Mapping[str, str],
    callback: str,
    now: float | None = None,
) -> ExternalIdentity:
    return asyncio.run(complete(settings, pending, query, callback, now=now))


def full_login(settings: OAuthClientSettings, callback: str) -> ExternalIdentity:
    url, pending = start(settings, callback)
    return finish(settings, pending, browser_visit(url), callback)


def error_code(call: Any) -> str:
    with pytest.raises(OAuthError) as caught:
        call()
    return caught.value.code


def user_rows(settings: Settings) -> list[tuple[Any, ...]]:
    with get_engine(settings.database_url).connect() as connection:
        query = sa.select(User.id, User.email, User.github_id, User.oidc_subject)  # type: ignore[call-overload]
        return [tuple(row) for row in connection.execute(query)]


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# --- begin --------------------------------------------------------------------------------


def test_begin_sends_s256_challenge_and_one_time_state(github: GitHubFake) -> None:
    settings = github_settings(github)
    url, pending = start(settings, GITHUB_CALLBACK)
    query = query_of(url)
    assert url.startswith(github.authorize_url + "?")
    assert query["client_id"] == github.client_id
    assert query["redirect_uri"] == GITHUB_CALLBACK
    assert query["response_type"] == "code"
    assert query["scope"] == "read:user user:email"
    assert query["state"] == pending.state and len(pending.state) >= 43
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == s256(pending.code_verifier)
    assert 43 <= len(pending.code_verifier) <= 128
    assert pending.code_verifier not in url
    assert "nonce" not in query and pending.nonce is None
    assert pending.provider == "github" and abs(pending.created_at - time.time()) < 5

    _, other = start(settings, GITHUB_CALLBACK)
    assert other.state != pending.state and other.code_verifier != pending.code_verifier


def test_begin_oidc_uses_discovery_and_sends_a_nonce(oidc: OidcProvider) -> None:
    url, pending = start(oidc_settings(oidc), OIDC_CALLBACK)
    query = query_of(url)
    assert url.startswith(oidc.issuer + "/authorize?")
    assert query["nonce"] == pending.nonce and len(pending.nonce or "") >= 43
    assert query["code_challenge"] == s256(pending.code_verifier)
    assert query["code_challenge_method"] == "S256"
    assert query["scope"] == "openid email profile"
    assert query["state"] == pending.state


def test_discovery_document_is_cached_per_issuer(oidc: OidcProvider) -> None:
    settings = oidc_settings(oidc)
    now = time.time()
    asyncio.run(begin(settings, OIDC_CALLBACK, now=now))
    first = oauth._discovery_cache[oidc.issuer]
    asyncio.run(begin(settings, OIDC_CALLBACK, now=now + 60))
    assert oauth._discovery_cache[oidc.issuer] is first
    asyncio.run(begin(settings, OIDC_CALLBACK, now=now + oauth.DISCOVERY_TTL + 1))
    assert oauth._discovery_cache[oidc.issuer] is not first


def test_unreachable_discovery_is_unavailable() -> None:
    oauth.clear_discovery_cache()
    settings = OAuthClientSettings(
        name="oidc", label="x", client_id="c", client_secret="s", issuer="http://127.0.0.1:9"
    )
    assert error_code(lambda: start(settings, OIDC_CALLBACK)) == "unavailable"


def test_pending_login_round_trips_and_rejects_garbage() -> None:
    pending = PendingLogin("github", "s" * 43, "v" * 86, None, 1.5, "/explore")
    assert PendingLogin.from_dict(pending.to_dict()) == pending
    for garbage in (
        None,
        "x",
        {},
        {**pending.to_dict(), "state": ""},
        {**pending.to_dict(), "created_at": "x"},
    ):
        assert PendingLogin.from_dict(garbage) is None


# --- GitHub: success ----------------------------------------------------------------------


def test_github_login_uses_numeric_id_verified_primary_email_name_avatar(
    github: GitHubFake, app_db: Settings
) -> None:
    github.user = GitHubUser(
        id=583231,
        login="octocat",
        name="The Octocat",
        avatar_url="https://avatars.example.com/u/583231",
        email="public@example.com",
        emails=[
            {"email": "old@example.com", "primary": False, "verified": True},
            {"email": "Octo@Example.com", "primary": True, "verified": True},
        ],
    )
    identity = full_login(github_settings(github), GITHUB_CALLBACK)
    assert identity == ExternalIdentity(
        provider="github",
        github_id=583231,
        email="octo@example.com",
        display_name="The Octocat",
        avatar_url="https://avatars.example.com/u/583231",
    )
    # What GitHub received: PKCE verifier and the constant callback, credentials in the form.
    [token_request] = github.token_requests
    assert token_request["redirect_uri"] == GITHUB_CALLBACK
    assert token_request["client_secret"] == github.client_secret
    assert s256(token_request["code_verifier"]) == github.authorize_requests[0]["code_challenge"]

    user = sign_in_external(identity)
    assert (user.github_id, user.email, user.display_name) == (
        583231,
        "octo@example.com",
        "The Octocat",
    )
    assert user.avatar_url == "https://avatars.example.com/u/583231"
    assert user.password_hash is None and user.onboarding_step == "profile"

    # The same GitHub account again (even renamed, new address): the same user, no duplicate.
    github.user = GitHubUser.with_verified_email("new@example.com", id=583231, login="renamed")
    again = sign_in_external(full_login(github_settings(github), GITHUB_CALLBACK))
    assert again.id == user.id
    assert len(user_rows(app_db)) == 1


@pytest.mark.parametrize(
    "emails",
    [
        [{"email": "a@example.com", "primary": True, "verified": False}],
        [{"email": "a@example.com", "primary": False, "verified": True}],
        [{"email": "a@example.com", "primary": "true", "verified": "true"}],
        [],
    ],
    ids=["primary-unverified", "verified-not-primary", "flags-not-booleans", "none"],
)
def test_github_email_is_none_without_a_verified_primary(
    github: GitHubFake, emails: list[dict[str, Any]]
) -> None:
    github.user = GitHubUser(id=7, login="ghost", name=None, email="a@example.com", emails=emails)
    identity = full_login(github_settings(github), GITHUB_CALLBACK)
    assert identity.email is None
    assert identity.display_name == "ghost"  # no name on GitHub: the login


# --- GitHub: every failure ------------------------------------------------------------------


def test_state_mismatch_is_refused_before_the_code_is_redeemed(
    github: GitHubFake, app_db: Settings
) -> None:
    settings = github_settings(github)
    url, pending = start(settings, GITHUB_CALLBACK)
    query = browser_visit(url)
    forged = {**query, "state": "attacker-state"}
    assert (
        error_code(lambda: finish(settings, pending, forged, GITHUB_CALLBACK)) == "state_mismatch"
    )
    assert github.token_requests == [] and github.pending_codes() == 1
    assert user_rows(app_db) == []


def test_state_from_another_provider_is_a_mismatch(github: GitHubFake) -> None:
    settings = github_settings(github)
    url, pending = start(settings, GITHUB_CALLBACK)
    as_oidc = PendingLogin("oidc", pending.state, pending.code_verifier, "n", pending.created_at)
    query = browser_visit(url)
    assert error_code(lambda: finish(settings, as_oidc, query, GITHUB_CALLBACK)) == "state_mismatch"


def test_missing_state_or_no_pending_login_is_state_missing(github: GitHubFake) -> None:
    settings = github_settings(github)
    url, pending = start(settings, GITHUB_CALLBACK)
    query = browser_visit(url)
    without_state = {"code": query["code"]}
    assert (
        error_code(lambda: finish(settings, pending, without_state, GITHUB_CALLBACK))
        == "state_missing"
    )
    # A replayed callback: the first one consumed the pending login, nothing is left.
    assert error_code(lambda: finish(settings, None, query, GITHUB_CALLBACK)) == "state_missing"
    assert github.token_requests == []


def test_replayed_callback_after_success_is_refused(github: GitHubFake) -> None:
    settings = github_settings(github)
    url, pending = start(settings, GITHUB_CALLBACK)
    query = browser_visit(url)
    finish(settings, pending, query, GITHUB_CALLBACK)
    # The state layer drops the pending login before completing; a replay has none.
    assert error_code(lambda: finish(settings, None, query, GITHUB_CALLBACK)) == "state_missing"
    # Even with the pending login kept by mistake, GitHub's one-time code fails.
    assert error_code(lambda: finish(settings, pending, query, GITHUB_CALLBACK)) == "token_error"


def test_pending_login_older_than_ten_minutes_is_expired(github: GitHubFake) -> None:
    settings = github_settings(github)
    url, pending = start(settings, GITHUB_CALLBACK)
    query = browser_visit(url)
    late = pending.created_at + oauth.PENDING_TTL + 1
    assert (
        error_code(lambda: finish(settings, pending, query, GITHUB_CALLBACK, now=late)) == "expired"
    )
    assert github.token_requests == []


def test_provider_error_access_denied(github: GitHubFake, app_db: Settings) -> None:
    github.deny = True
    settings = github_settings(github)
    url, pending = start(settings, GITHUB_CALLBACK)
    query = browser_visit(url)
    assert query["error"] == "access_denied" and "code" not in query
    assert error_code(lambda: finish(settings, pending, query, GITHUB_CALLBACK)) == "provider_error"
    assert github.token_requests == [] and user_rows(app_db) == []


def test_missing_code(github: GitHubFake) -> None:
    settings = github_settings(github)
    _, pending = start(settings, GITHUB_CALLBACK)
    query = {"state": pending.state}
    assert error_code(lambda: finish(settings, pending, query, GITHUB_CALLBACK)) == "missing_code"


#: Callback values that are not one plain string: what a crafted websocket event can carry.
NOT_PLAIN_TEXT = [
    "\ud800",
    "abc\udfffdef",
    "a\x00b",
    "one-time-code\n",
    "\x1b[31mred",
    "\u202e\x7f",
    ["first", "second"],
    42,
    "x" * (oauth.MAX_PARAM + 1),
]
NOT_PLAIN_TEXT_IDS = [
    "lone-high-surrogate",
    "lone-low-surrogate",
    "nul",
    "newline",
    "escape",
    "del",
    "repeated",
    "not-a-string",
    "too-long",
]


@pytest.mark.parametrize("bad", NOT_PLAIN_TEXT, ids=NOT_PLAIN_TEXT_IDS)
@pytest.mark.parametrize(
    ("name", "expected"),
    [("state", "state_mismatch"), ("error", "provider_error"), ("code", "missing_code")],
)
def test_callback_value_that_is_not_plain_text_refuses_the_sign_in(
    github: GitHubFake, app_db: Settings, name: str, expected: str, bad: object
) -> None:
    settings = github_settings(github)
    url, pending = start(settings, GITHUB_CALLBACK)
    query: dict[str, Any] = {**browser_visit(url), name: bad}
    assert error_code(lambda: finish(settings, pending, query, GITHUB_CALLBACK)) == expected
    assert github.token_requests == [] and user_rows(app_db) == []


@pytest.mark.parametrize("bad", NOT_PLAIN_TEXT, ids=NOT_PLAIN_TEXT_IDS)
def test_oidc_iss_that_is_not_plain_text_refuses_the_sign_in(
    oidc: OidcProvider, app_db: Settings, bad: object
) -> None:
    settings = oidc_settings(oidc)
    url, pending = start(settings, OIDC_CALLBACK)
    query: dict[str, Any] = {**browser_visit(url), "iss": bad}
    assert error_code(lambda: finish(settings, pending, query, OIDC_CALLBACK)) == "issuer_mismatch"
    assert oidc.token_requests() == [] and user_rows(app_db) == []


def test_odd_state_without_a_pending_login_is_state_missing(github: GitHubFake) -> None:
    query = {"state": "\ud800", "code": "c"}
    settings = github_settings(github)
    assert error_code(lambda: finish(settings, None, query, GITHUB_CALLBACK)) == "state_missing"


def test_wrong_pkce_verifier_is_a_token_error(github: GitHubFake) -> None:
    settings = github_settings(github)
    url, pending = start(settings, GITHUB_CALLBACK)
    query = browser_visit(url)
    other_verifier = PendingLogin("github", pending.state, "x" * 86, None, pending.created_at)
    assert (
        error_code(lambda: finish(settings, other_verifier, query, GITHUB_CALLBACK))
        == "token_error"
    )


def test_wrong_client_secret_is_a_token_error(github: GitHubFake) -> None:
    settings = github_settings(github, client_secret="not-the-secret")
    assert error_code(lambda: full_login(settings, GITHUB_CALLBACK)) == "token_error"


def test_token_endpoint_500_is_a_token_error(github: GitHubFake, app_db: Settings) -> None:
    github.token_status = 500
    assert error_code(lambda: full_login(github_settings(github), GITHUB_CALLBACK)) == "token_error"
    assert user_rows(app_db) == []


def test_token_endpoint_timeout_is_unavailable_within_the_timeout(
    github: GitHubFake, app_db: Settings
) -> None:
    github.token_delay = 3.0
    settings = github_settings(github, timeout=0.5)
    started = time.monotonic()
    assert error_code(lambda: full_login(settings, GITHUB_CALLBACK)) == "unavailable"
    assert time.monotonic() - started < 2.5
    assert user_rows(app_db) == []


def test_unreachable_token_endpoint_is_unavailable(github: GitHubFake) -> None:
    settings = github_settings(github, token_url="http://127.0.0.1:9/login/oauth/access_token")
    assert error_code(lambda: full_login(settings, GITHUB_CALLBACK)) == "unavailable"


def test_verified_email_of_an_existing_account_is_never_linked(
    github: GitHubFake, app_db: Settings
) -> None:
    local = create_local_user("taken@example.com", HASH)
    github.user = GitHubUser.with_verified_email("Taken@Example.com", id=99, login="intruder")
    identity = full_login(github_settings(github), GITHUB_CALLBACK)
    with pytest.raises(OAuthError) as caught:
        sign_in_external(identity)
    assert caught.value.code == "email_taken"
    assert (
        caught.value.message
        == "An account with this email already exists. Log in with your password."
    )
    assert user_rows(app_db) == [(local.id, "taken@example.com", None, None)]


def test_github_account_without_email_can_sign_up_next_to_others(
    github: GitHubFake, app_db: Settings
) -> None:
    create_local_user("someone@example.com", HASH)
    github.user = GitHubUser(id=5, login="quiet", name="Quiet One", emails=[])
    user = sign_in_external(full_login(github_settings(github), GITHUB_CALLBACK))
    assert user.email is None and user.github_id == 5
    assert len(user_rows(app_db)) == 2


# --- OpenID Connect ----------------------------------------------------------------------------


def test_oidc_login_uses_issuer_and_sub_and_verified_email(
    oidc: OidcProvider, app_db: Settings
) -> None:
    oidc.configure(
        id_token_claims={
            "sub": "user-123",
            "email": "Alice@Example.com",
            "email_verified": True,
            "name": "Alice Liddell",
            "picture": "https://pictures.example.com/alice.png",
        }
    )
    settings = oidc_settings(oidc)
    identity = full_login(settings, OIDC_CALLBACK)
    assert identity == ExternalIdentity(
        provider="oidc",
        oidc_issuer=oidc.issuer,
        oidc_subject="user-123",
        email="alice@example.com",
        display_name="Alice Liddell",
        avatar_url="https://pictures.example.com/alice.png",
    )
    user = sign_in_external(identity)
    assert (user.oidc_issuer, user.oidc_subject, user.email) == (
        oidc.issuer,
        "user-123",
        "alice@example.com",
    )
    assert sign_in_external(full_login(settings, OIDC_CALLBACK)).id == user.id
    assert len(user_rows(app_db)) == 1


@pytest.mark.parametrize(
    "verified", [False, "false", None], ids=["false", "string-false", "absent"]
)
def test_oidc_email_is_used_only_when_verified(oidc: OidcProvider, verified: object) -> None:
    claims: dict[str, Any] = {"sub": "u-2", "email": "bob@example.com", "name": "Bob"}
    if verified is not None:
        claims["email_verified"] = verified
    oidc.configure(
        id_token_claims=claims,
        userinfo={"sub": "u-2", "email": "bob@example.com", "email_verified": True},
    )
    identity = full_login(oidc_settings(oidc), OIDC_CALLBACK)
    assert identity.oidc_subject == "u-2" and identity.email is None


def test_oidc_userinfo_fills_what_the_id_token_lacks_for_the_same_subject(
    oidc: OidcProvider,
) -> None:
    oidc.configure(
        id_token_claims={"sub": "u-3"},
        userinfo={
            "sub": "u-3",
            "email": "carol@example.com",
            "email_verified": True,
            "name": "Carol",
        },
    )
    identity = full_login(oidc_settings(oidc), OIDC_CALLBACK)
    assert (identity.email, identity.display_name) == ("carol@example.com", "Carol")

    oidc.configure(
        id_token_claims={"sub": "u-4"},
        userinfo={
            "sub": "someone-else",
            "email": "eve@example.com",
            "email_verified": True,
            "name": "Eve",
        },
    )
    identity = full_login(oidc_settings(oidc), OIDC_CALLBACK)
    assert (identity.oidc_subject, identity.email, identity.display_name) == ("u-4", None, "")


@pytest.mark.parametrize(
    "config",
    [
        {"id_token_claims": {"nonce": "not-the-nonce"}},
        {"remove_claims": ["nonce"]},
        {"id_token_claims": {"aud": "another-client"}},
        {"id_token_claims": {"iss": "http://evil.example.com"}},
        {"id_token_claims": {"exp": 1_000_000}},
        {"id_token_claims": {"iat": 4_000_000_000}},
        {"remove_claims": ["sub"]},
        {"tamper": "payload"},
        {"tamper": "alg_none"},
        {"kid": "unknown-key"},
        {"remove_claims": ["iss"]},
        {"remove_claims": ["aud"]},
        {"remove_claims": ["exp"]},
        {"remove_claims": ["iat"]},
        {"id_token_claims": {"nbf": 4_000_000_000}},
        {"id_token_claims": {"azp": "another-client"}},
        {"id_token_claims": {"aud": ["onboard-test-client", "another-client"]}},
        {"id_token_claims": {"at_hash": "bm90LXRoZS1oYXNo"}},
        {"id_token_claims": {"iss": "{issuer}/"}},
        {"id_token_claims": {"nonce": None}},
        {"tamper": "alg_none", "discovery": {"id_token_signing_alg_values_supported": ["none"]}},
    ],
    ids=[
        "wrong-nonce",
        "no-nonce",
        "wrong-aud",
        "wrong-iss",
        "expired",
        "issued-in-future",
        "no-sub",
        "tampered-payload",
        "alg-none",
        "unknown-kid",
        "no-iss",
        "no-aud",
        "no-exp",
        "no-iat",
        "not-yet-valid",
        "wrong-azp",
        "two-audiences-no-azp",
        "wrong-at-hash",
        "iss-with-trailing-slash",
        "null-nonce",
        "alg-none-listed-by-discovery",
    ],
)
def test_oidc_id_token_is_fully_validated(
    oidc: OidcProvider, app_db: Settings, config: dict[str, Any]
) -> None:
    oidc.configure(**json.loads(json.dumps(config).replace("{issuer}", oidc.issuer)))
    assert error_code(lambda: full_login(oidc_settings(oidc), OIDC_CALLBACK)) == "invalid_id_token"
    assert user_rows(app_db) == []


def test_oidc_token_endpoint_500_is_a_token_error(oidc: OidcProvider) -> None:
    oidc.configure(token_status=500)
    assert error_code(lambda: full_login(oidc_settings(oidc), OIDC_CALLBACK)) == "token_error"


def test_oidc_state_checks_apply(oidc: OidcProvider) -> None:
    settings = oidc_settings(oidc)
    url, pending = start(settings, OIDC_CALLBACK)
    query = browser_visit(url)
    assert (
        error_code(lambda: finish(settings, pending, {**query, "state": "x"}, OIDC_CALLBACK))
        == "state_mismatch"
    )
    assert error_code(lambda: finish(settings, None, query, OIDC_CALLBACK)) == "state_missing"


# --- OpenID Connect: the issuer of the authorization response (RFC 9207) -------------------

ISS_ADVERTISED = {"authorization_response_iss_parameter_supported": True}


@pytest.mark.parametrize(
    ("discovery", "iss"),
    [({}, None), ({}, "{issuer}"), (ISS_ADVERTISED, "{issuer}")],
    ids=["not-advertised-absent", "not-advertised-right", "advertised-right"],
)
def test_oidc_response_with_the_issuer_or_none_unadvertised_signs_in(
    oidc: OidcProvider, discovery: dict[str, Any], iss: str | None
) -> None:
    params = {} if iss is None else {"iss": iss.format(issuer=oidc.issuer)}
    oidc.configure(discovery=discovery, callback_params=params)
    settings = oidc_settings(oidc)
    url, pending = start(settings, OIDC_CALLBACK)
    query = browser_visit(url)
    assert query.get("iss") == params.get("iss")
    assert finish(settings, pending, query, OIDC_CALLBACK).oidc_issuer == oidc.issuer
    assert len(oidc.token_requests()) == 1


@pytest.mark.parametrize(
    ("discovery", "iss"),
    [
        (ISS_ADVERTISED, None),
        ({}, "http://evil.example.com"),
        (ISS_ADVERTISED, "http://evil.example.com"),
        ({}, "{issuer}/"),
        (ISS_ADVERTISED, "{issuer}/"),
        ({"authorization_response_iss_parameter_supported": "true"}, None),
    ],
    ids=[
        "advertised-missing",
        "wrong",
        "advertised-wrong",
        "trailing-slash",
        "advertised-trailing-slash",
        "advertised-as-string-missing",
    ],
)
def test_oidc_response_from_another_issuer_is_refused_before_the_code_is_redeemed(
    oidc: OidcProvider, app_db: Settings, discovery: dict[str, Any], iss: str | None
) -> None:
    params = {} if iss is None else {"iss": iss.format(issuer=oidc.issuer)}
    oidc.configure(discovery=discovery, callback_params=params)
    settings = oidc_settings(oidc)
    url, pending = start(settings, OIDC_CALLBACK)
    query = browser_visit(url)
    assert "code" in query and query.get("iss") == params.get("iss")
    with pytest.raises(OAuthError) as caught:
        finish(settings, pending, query, OIDC_CALLBACK)
    assert caught.value.code == "issuer_mismatch"
    assert message_for("issuer_mismatch") == (
        "We could not verify which provider answered this sign-in. Please try again."
    )
    assert oidc.token_requests() == [] and user_rows(app_db) == []


# --- OpenID Connect: how the client authenticates at the token endpoint ----------------------


@pytest.mark.parametrize(
    ("advertised", "configured", "expected"),
    [
        (None, None, "client_secret_basic"),
        (["client_secret_post", "client_secret_basic"], None, "client_secret_post"),
        (
            ["private_key_jwt", "client_secret_basic", "client_secret_post"],
            None,
            "client_secret_basic",
        ),
        (["private_key_jwt", "tls_client_auth"], None, "client_secret_basic"),
        (["client_secret_basic"], "client_secret_post", "client_secret_post"),
        (["client_secret_post"], "client_secret_basic", "client_secret_basic"),
    ],
    ids=[
        "mock-lists-only-none",
        "post-listed-first",
        "first-supported-is-basic",
        "none-supported",
        "configured-post",
        "configured-basic",
    ],
)
def test_oidc_token_request_authenticates_as_configured_else_as_discovery_lists(
    oidc: OidcProvider, advertised: list[str] | None, configured: str | None, expected: str
) -> None:
    discovery = {} if advertised is None else {"token_endpoint_auth_methods_supported": advertised}
    oidc.configure(discovery=discovery, require_auth_method=expected)
    full_login(oidc_settings(oidc, token_auth_method=configured), OIDC_CALLBACK)
    [request] = oidc.token_requests()
    assert request == {
        "method": expected,
        "client_id": oidc.client_id,
        "client_secret": oidc.client_secret,
        "secret_in_body": expected == "client_secret_post",
    }


def test_oidc_provider_requiring_post_refuses_basic_credentials(
    oidc: OidcProvider, app_db: Settings
) -> None:
    oidc.configure(
        discovery={"token_endpoint_auth_methods_supported": ["client_secret_post"]},
        require_auth_method="client_secret_post",
    )
    settings = oidc_settings(oidc, token_auth_method="client_secret_basic")
    assert error_code(lambda: full_login(settings, OIDC_CALLBACK)) == "token_error"
    assert [r["method"] for r in oidc.token_requests()] == ["client_secret_basic"]
    assert user_rows(app_db) == []


def test_oidc_public_client_sends_its_id_and_no_secret(oidc: OidcProvider) -> None:
    oidc.configure(require_auth_method="none")
    full_login(oidc_settings(oidc, client_secret=""), OIDC_CALLBACK)
    [request] = oidc.token_requests()
    assert request == {
        "method": "none",
        "client_id": oidc.client_id,
        "client_secret": None,
        "secret_in_body": False,
    }


def oidc_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "ONBOARD_DEV_KEY_FILE": str(tmp_path / "dev-key"),
        "ONBOARD_OIDC_ISSUER": "https://id.example.com/",
        "ONBOARD_OIDC_CLIENT_ID": "client",
        "ONBOARD_OIDC_CLIENT_SECRET": "secret",
        **extra,
    }


def test_token_auth_method_setting_defaults_to_discovery(tmp_path: Path) -> None:
    oidc = load_settings(oidc_env(tmp_path)).oidc
    assert oidc is not None and oidc.token_auth_method is None
    blank = load_settings(oidc_env(tmp_path, ONBOARD_OIDC_TOKEN_AUTH_METHOD=" ")).oidc
    assert blank is not None and blank.token_auth_method is None
    for method in TOKEN_AUTH_METHODS:
        chosen = load_settings(oidc_env(tmp_path, ONBOARD_OIDC_TOKEN_AUTH_METHOD=method)).oidc
        assert chosen is not None and chosen.token_auth_method == method


@pytest.mark.parametrize("value", ["private_key_jwt", "none", "Client_Secret_Post", "post"])
def test_unknown_token_auth_method_is_a_clear_startup_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(oidc_env(tmp_path, ONBOARD_OIDC_TOKEN_AUTH_METHOD=value))
    assert str(caught.value) == (
        "ONBOARD_OIDC_TOKEN_AUTH_METHOD must be client_secret_basic or client_secret_post, "
        f"got {value!r}"
    )


def test_token_auth_method_without_a_client_secret_is_a_startup_error(tmp_path: Path) -> None:
    env = oidc_env(tmp_path, ONBOARD_OIDC_TOKEN_AUTH_METHOD="client_secret_post")
    del env["ONBOARD_OIDC_CLIENT_SECRET"]
    with pytest.raises(SettingsError, match="needs ONBOARD_OIDC_CLIENT_SECRET"):
        load_settings(env)


def test_oidc_login_without_a_nonce_is_refused(oidc: OidcProvider, app_db: Settings) -> None:
    # authlib skips the nonce comparison when it has no nonce to compare with.
    settings = oidc_settings(oidc)
    url, pending = start(settings, OIDC_CALLBACK)
    query = browser_visit(url)
    without = PendingLogin("oidc", pending.state, pending.code_verifier, None, pending.created_at)
    assert error_code(lambda: finish(settings, without, query, OIDC_CALLBACK)) == (
        "invalid_id_token"
    )
    assert user_rows(app_db) == []


def test_oidc_id_token_with_azp_and_an_audience_list_is_accepted(oidc: OidcProvider) -> None:
    # The negative cases above would also pass if every token were refused.
    oidc.configure(id_token_claims={"sub": "u-ok", "azp": oidc.client_id, "aud": [oidc.client_id]})
    assert full_login(oidc_settings(oidc), OIDC_CALLBACK).oidc_subject == "u-ok"


def test_oidc_key_rotation_reloads_the_jwks_once_and_signs_in(oidc: OidcProvider) -> None:
    settings = oidc_settings(oidc)
    full_login(settings, OIDC_CALLBACK)
    cached = oauth._discovery_cache[oidc.issuer].metadata
    assert len(cached["jwks"]["keys"]) == 1
    oidc.rotate_key()
    oidc.configure(id_token_claims={"sub": "after-rotation"})
    assert full_login(settings, OIDC_CALLBACK).oidc_subject == "after-rotation"
    # The token named a key the cached JWKS lacked: it was fetched again, and kept.
    assert oauth._discovery_cache[oidc.issuer].metadata is cached
    assert len(cached["jwks"]["keys"]) == 2


@pytest.mark.parametrize(
    "discovery",
    [
        {"issuer": "http://evil.example.com"},
        {"issuer": None},
        {"jwks_uri": None},
        {"token_endpoint": 42},
    ],
    ids=["other-issuer", "no-issuer", "no-jwks-uri", "token-endpoint-not-a-string"],
)
def test_unusable_discovery_document_is_unavailable(
    oidc: OidcProvider, discovery: dict[str, Any]
) -> None:
    oidc.configure(discovery=discovery)
    assert error_code(lambda: start(oidc_settings(oidc), OIDC_CALLBACK)) == "unavailable"


def test_discovery_document_cannot_change_the_client(oidc: OidcProvider) -> None:
    # authlib hands the document to its HTTP client as keyword arguments.
    oidc.configure(
        discovery={
            "code_challenge_method": "plain",
            "response_type": "token",
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "openid",
            "redirect_uri": "http://evil.example.com/callback",
            "jwks": {"keys": []},
        },
        require_auth_method="client_secret_basic",
    )
    settings = oidc_settings(oidc)
    url, pending = start(settings, OIDC_CALLBACK)
    query = query_of(url)
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == s256(pending.code_verifier)
    assert query["response_type"] == "code"
    assert query["scope"] == "openid email profile"
    assert query["redirect_uri"] == OIDC_CALLBACK
    identity = finish(settings, pending, browser_visit(url), OIDC_CALLBACK)
    assert identity.oidc_subject == "johndoe"
    assert [r["method"] for r in oidc.token_requests()] == ["client_secret_basic"]


def test_unreachable_jwks_is_unavailable(oidc: OidcProvider, app_db: Settings) -> None:
    oidc.configure(discovery={"jwks_uri": "http://127.0.0.1:9/jwks"})
    assert error_code(lambda: full_login(oidc_settings(oidc), OIDC_CALLBACK)) == "unavailable"
    assert user_rows(app_db) == []


def test_oversized_id_token_is_refused(oidc: OidcProvider) -> None:
    oidc.configure(id_token_claims={"padding": "x" * oauth.MAX_ID_TOKEN})
    assert error_code(lambda: full_login(oidc_settings(oidc), OIDC_CALLBACK)) == "invalid_id_token"


def test_provider_text_that_is_not_plain_text_is_dropped(
    github: GitHubFake, oidc: OidcProvider
) -> None:
    github.user = GitHubUser(
        id=31,
        login="plain-login",
        name="Bad\ud800Name",
        avatar_url="https://avatars.example.com/\x00",
        emails=[{"email": "bad\udfff@example.com", "primary": True, "verified": True}],
    )
    identity = full_login(github_settings(github), GITHUB_CALLBACK)
    assert (identity.display_name, identity.email, identity.avatar_url) == (
        "plain-login",
        None,
        None,
    )
    oidc.configure(
        id_token_claims={
            "sub": "u-text",
            "name": "\x1b[2J",
            "preferred_username": "  Ada   Lovelace ",
            "email": "ada\u0000@example.com",
            "email_verified": True,
        }
    )
    identity = full_login(oidc_settings(oidc), OIDC_CALLBACK)
    assert (identity.display_name, identity.email) == ("Ada Lovelace", None)


@pytest.mark.parametrize(
    "subject", ["\ud800", "a\x00b", "s" * 256], ids=["surrogate", "nul", "long"]
)
def test_oidc_subject_that_is_not_plain_text_is_refused(
    oidc: OidcProvider, app_db: Settings, subject: str
) -> None:
    oidc.configure(id_token_claims={"sub": subject})
    assert error_code(lambda: full_login(oidc_settings(oidc), OIDC_CALLBACK)) == "no_account_info"
    assert user_rows(app_db) == []


def test_oauth_keeps_the_names_the_oauth_state_uses() -> None:
    assert oauth.ExternalIdentity is linking.ExternalIdentity
    assert oauth.OAuthError is oauth_errors.OAuthError
    assert oauth.message_for is oauth_errors.message_for
    assert oauth.MESSAGES is oauth_errors.MESSAGES


def test_module_has_no_reflex_import() -> None:
    source = Path(oauth.__file__).read_text()
    assert "import reflex" not in source and "from reflex" not in source
