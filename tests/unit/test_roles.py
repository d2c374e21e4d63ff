"""The admin role: who has it, how the token carries it, how operators grant and revoke it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from onboard_app import cli
from onboard_app.models import User
from onboard_app.services import roles
from onboard_app.services.db import session_scope
from onboard_app.services.sessions import authenticate, start_session
from onboard_app.services.tokens import (
    Rejection,
    SessionClaims,
    TokenRejected,
    mint_session_token,
    verify_session_token,
)
from onboard_app.services.users import create_external_user, create_local_user, get_user, set_role
from onboard_app.settings import Settings, SettingsError, load_settings, override_settings
from tests.conftest import make_settings
from tests.unit.test_tokens import Subject, b64json, good_header, good_payload, sign

HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"


def payload_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.mark.parametrize(
    ("granted", "email", "verified", "listed", "role"),
    [
        ("admin", "a@example.com", True, False, "admin"),
        ("member", "a@example.com", True, True, "admin"),
        ("member", "a@example.com", True, False, "member"),
        ("admin", "a@example.com", False, False, "member"),  # never before it is verified
        ("member", "a@example.com", False, True, "member"),
        ("admin", None, True, False, "member"),
        ("member", "A@example.com", True, True, "member"),  # stored addresses are lower case
    ],
)
def test_effective_role(
    granted: str, email: str | None, verified: bool, listed: bool, role: str
) -> None:
    settings = make_settings(admin_emails=frozenset({"a@example.com"} if listed else set()))
    assert roles.effective_role(granted, email, verified, settings) == role


def test_admin_emails_are_read_normalised_and_checked() -> None:
    env = {"ONBOARD_ADMIN_EMAILS": " Ops@Example.com, b@example.org ,,"}
    assert load_settings(env).admin_emails == {"ops@example.com", "b@example.org"}
    assert load_settings({}).admin_emails == frozenset()
    for bad in ("ops", "ops@localhost", "a b@example.com"):
        with pytest.raises(SettingsError):
            load_settings({"ONBOARD_ADMIN_EMAILS": bad})


def test_retention_is_read_and_checked() -> None:
    assert load_settings({}).events_retention_days == 365
    assert load_settings({"ONBOARD_EVENTS_RETENTION_DAYS": "30"}).events_retention_days == 30
    for bad in ("0", "-5", "soon"):
        with pytest.raises(SettingsError):
            load_settings({"ONBOARD_EVENTS_RETENTION_DAYS": bad})


def test_only_an_admin_token_carries_the_role_claim() -> None:
    cfg = make_settings()
    member = mint_session_token(Subject(), cfg)
    admin = mint_session_token(Subject(), cfg, role=roles.ADMIN)
    assert "role" not in payload_of(member)
    assert payload_of(admin)["role"] == "admin"
    verified = verify_session_token(admin, cfg)
    assert isinstance(verified, SessionClaims) and verified.role == roles.ADMIN
    verified = verify_session_token(member, cfg)
    assert isinstance(verified, SessionClaims) and verified.role == roles.MEMBER


@pytest.mark.parametrize("value", ["member", "root", "ADMIN", True, 1, ["admin"], None])
def test_any_other_role_claim_is_refused(value: object) -> None:
    cfg = make_settings()
    token = sign(good_header(), good_payload(cfg, role=value))
    result = verify_session_token(token, cfg)
    assert isinstance(result, TokenRejected) and result.reason is Rejection.INVALID


def test_a_role_added_to_a_members_token_breaks_its_signature() -> None:
    cfg = make_settings()
    header, payload, signature = mint_session_token(Subject(), cfg).split(".")
    forged = payload_of(f"{header}.{payload}.{signature}") | {"role": "admin"}
    result = verify_session_token(f"{header}.{b64json(forged)}.{signature}", cfg)
    assert isinstance(result, TokenRejected)


def verified_account(email: str) -> int:
    user = create_local_user(email, HASH)
    assert user.id is not None
    with session_scope() as session:
        row = session.get(User, user.id)
        assert row is not None
        row.email_verified_at = datetime.now(UTC)
    return user.id


def test_the_session_follows_the_row_and_re_mints_the_claim(app_db: Settings) -> None:
    user_id = verified_account("ops@example.com")
    user = get_user(user_id)
    assert user is not None
    token = start_session(user)
    assert "role" not in payload_of(token)
    set_role("ops@example.com", roles.ADMIN)
    session = authenticate(token)
    assert not isinstance(session, TokenRejected)
    assert session.user.role == roles.ADMIN and session.reminted
    assert payload_of(session.token)["role"] == "admin"
    set_role("ops@example.com", roles.MEMBER)
    again = authenticate(session.token)
    assert not isinstance(again, TokenRejected)
    assert again.user.role == roles.MEMBER and "role" not in payload_of(again.token)


def test_a_login_of_a_listed_verified_address_starts_an_admin_session(app_db: Settings) -> None:
    override_settings(
        make_settings(database_url=app_db.database_url, admin_emails=frozenset({"a@example.com"}))
    )
    user_id = verified_account("a@example.com")
    unverified = create_local_user("b@example.com", HASH)
    user = get_user(user_id)
    assert user is not None
    assert payload_of(start_session(user))["role"] == "admin"
    assert "role" not in payload_of(start_session(unverified))


def test_grant_and_revoke_from_the_command_line(
    app_db: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    user_id = verified_account("ops@example.com")
    create_local_user("new@example.com", HASH)
    assert cli.main(["grant-admin", " OPS@example.com "]) == 0
    assert get_user(user_id).role == "admin"  # type: ignore[union-attr]
    assert "is an admin" in capsys.readouterr().out
    assert cli.main(["grant-admin", "new@example.com"]) == 1  # not verified yet
    assert "not verified" in capsys.readouterr().err
    assert cli.main(["grant-admin", "nobody@example.com"]) == 1
    assert cli.main(["grant-admin"]) == 2
    assert cli.main(["revoke-admin", "ops@example.com"]) == 0
    assert get_user(user_id).role == "member"  # type: ignore[union-attr]


def test_revoking_a_listed_address_says_it_stays_an_admin(
    app_db: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    override_settings(
        make_settings(database_url=app_db.database_url, admin_emails=frozenset({"a@example.com"}))
    )
    verified_account("a@example.com")
    assert cli.main(["revoke-admin", "a@example.com"]) == 0
    assert "ONBOARD_ADMIN_EMAILS" in capsys.readouterr().out


def test_prune_from_the_command_line(app_db: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["prune-events"]) == 0
    assert "deleted 0 onboarding event(s) older than 365 days" in capsys.readouterr().out


def test_a_provider_account_with_a_listed_address_is_an_admin(app_db: Settings) -> None:
    override_settings(
        make_settings(database_url=app_db.database_url, admin_emails=frozenset({"gh@example.com"}))
    )
    user = create_external_user(
        email="gh@example.com", display_name="Octo", avatar_url=None, github_id=5
    )
    assert payload_of(start_session(user))["role"] == "admin"
    with pytest.raises(ValueError):
        set_role("gh@example.com", "owner")
