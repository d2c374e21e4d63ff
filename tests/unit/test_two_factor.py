"""Authenticator-app codes (TOTP) and recovery codes: RFC 6238, drift, replay, storage, throttle."""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
import sqlalchemy as sa

from onboard_app.models import TwoFactor, TwoFactorRecoveryCode
from onboard_app.services import passwords, two_factor, users
from onboard_app.services.account_settings import WrongPassword
from onboard_app.services.db import session_scope
from onboard_app.services.recovery import Throttled
from onboard_app.services.throttle import Throttle, make_throttle
from onboard_app.services.two_factor import (
    CodeRefused,
    EnrolmentRefused,
    TwoFactorThrottled,
    check_code,
    code_at,
    matching_step,
    time_step,
)
from onboard_app.settings import Settings, SigningKey, override_settings
from tests.conftest import KEY, make_settings
from tests.unit.test_email_links import all_at_once, any_db  # noqa: F401 (a fixture)

T = TypeVar("T")
PASSWORD = "correct horse battery staple"
CLIENT = "203.0.113.7"
#: A fixed clock: the middle of a 30-second step.
NOW = 1_800_000_015.0

# RFC 6238, appendix B: the SHA-1 seed and its 8-digit codes.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.fixture
def throttle(app_db: Settings) -> Throttle:
    """Fresh counters (memory: a prefix no other test uses gives its own storage)."""
    return make_throttle(app_db, key_prefix=f"test-2fa-{secrets.token_hex(4)}")


_emails = iter(range(10**6))


def new_user() -> users.User:
    email = users.normalise_email(f"totp{next(_emails)}-{secrets.token_hex(3)}@example.com")
    assert email is not None
    return users.create_local_user(email, passwords.hash_password(PASSWORD))


def enrolled(throttle: Throttle, now: float = NOW) -> tuple[users.User, str, list[str]]:
    """A new user with a confirmed authenticator app: the user, the secret, recovery codes.

    The confirming code is the one of the step before ``now``, so the current step's code
    is still unused.
    """
    user = new_user()
    assert user.id is not None
    setup = two_factor.begin_enrolment(user, PASSWORD, CLIENT, throttle, now=now)
    codes = two_factor.confirm_enrolment(
        user.id, code_at(setup.secret, time_step(now) - 1), CLIENT, throttle, now=now
    )
    return user, setup.secret, codes


def stored() -> list[dict[str, Any]]:
    with session_scope() as session:
        return [
            dict(row._mapping)
            for table in (TwoFactor.__table__, TwoFactorRecoveryCode.__table__)
            for row in session.execute(sa.select(table))
        ]


def attempt(action: Callable[[], T]) -> Callable[[], T | Exception]:
    """The action, returning what it raises instead of raising it."""

    def run() -> T | Exception:
        try:
            return action()
        except Exception as exc:
            return exc

    return run


# --- RFC 6238 -------------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "expected"), RFC_VECTORS)
def test_rfc_6238_sha1_vectors(at: int, expected: str) -> None:
    assert code_at(RFC_SECRET, time_step(at), digits=8) == expected
    assert pyotp.TOTP(RFC_SECRET, digits=8).at(at) == expected  # the library agrees
    assert matching_step(RFC_SECRET, expected, now=at, last_step=None, digits=8) == at // 30


def test_one_step_of_drift_is_accepted_two_are_not() -> None:
    step = time_step(NOW)
    for offset, accepted in ((-2, False), (-1, True), (0, True), (1, True), (2, False)):
        code = code_at(RFC_SECRET, step + offset)
        found = matching_step(RFC_SECRET, code, now=NOW, last_step=None)
        assert found == (step + offset if accepted else None), offset


def test_a_step_at_or_before_the_last_accepted_one_is_refused() -> None:
    step = time_step(NOW)
    code = code_at(RFC_SECRET, step)
    assert matching_step(RFC_SECRET, code, now=NOW, last_step=step - 1) == step
    assert matching_step(RFC_SECRET, code, now=NOW, last_step=step) is None
    earlier = code_at(RFC_SECRET, step - 1)
    assert matching_step(RFC_SECRET, earlier, now=NOW, last_step=step) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12345a", "١٢٣٤٥٦"])
def test_malformed_codes_match_nothing(code: str) -> None:
    assert matching_step(RFC_SECRET, code, now=NOW, last_step=None) is None


def test_the_provisioning_uri_names_the_issuer_and_the_account() -> None:
    secret = two_factor.new_secret()
    assert len(base64.b32decode(secret)) == 20  # 160 bits
    uri = two_factor.provisioning_uri(secret, "ada+test@example.com")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Onboard:ada+test@example.com"
    query = parse_qs(parts.query)
    assert query["secret"] == [secret] and query["issuer"] == ["Onboard"]
    # What an app computes from the URI is what the server checks.
    app = pyotp.parse_uri(uri)
    assert app.now() == code_at(secret, time_step(time.time()))
    assert two_factor.qr_code(uri).startswith("data:image/svg+xml")
    assert two_factor.grouped("ABCDEFGHIJ") == "ABCD EFGH IJ"


# --- enrolment ------------------------------------------------------------------------------


def test_enrolment_needs_the_password_and_then_a_code(app_db: Settings, throttle: Throttle) -> None:
    user = new_user()
    assert user.id is not None
    with pytest.raises(WrongPassword):
        two_factor.begin_enrolment(user, "not my password", CLIENT, throttle)
    assert stored() == []
    setup = two_factor.begin_enrolment(user, PASSWORD, CLIENT, throttle, now=NOW)
    assert not two_factor.is_enrolled(user.id)  # not before the app proves it has the secret
    wrong = code_at(setup.secret, time_step(NOW) + 3)
    with pytest.raises(CodeRefused):
        two_factor.confirm_enrolment(user.id, wrong, CLIENT, throttle, now=NOW)
    codes = two_factor.confirm_enrolment(
        user.id, code_at(setup.secret, time_step(NOW)), CLIENT, throttle, now=NOW
    )
    assert two_factor.status(user.id) == two_factor.Status(True, 10)
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"([2-9a-hjkmnp-z]{4}-){3}[2-9a-hjkmnp-z]{4}", c) for c in codes)
    # Confirmed once: the same code cannot confirm again, nor can enrolment restart.
    with pytest.raises(EnrolmentRefused):
        two_factor.confirm_enrolment(
            user.id, code_at(setup.secret, time_step(NOW)), CLIENT, throttle, now=NOW
        )
    with pytest.raises(EnrolmentRefused):
        two_factor.begin_enrolment(user, PASSWORD, CLIENT, throttle)


def test_an_enrolment_expires_and_a_new_one_replaces_it(
    app_db: Settings, throttle: Throttle
) -> None:
    user = new_user()
    assert user.id is not None
    first = two_factor.begin_enrolment(user, PASSWORD, CLIENT, throttle)
    second = two_factor.begin_enrolment(user, PASSWORD, CLIENT, throttle)
    assert first.secret != second.secret
    now = time.time()
    with pytest.raises(CodeRefused):  # the first QR code no longer works
        two_factor.confirm_enrolment(
            user.id, code_at(first.secret, time_step(now)), CLIENT, throttle, now=now
        )
    later = now + two_factor.ENROLMENT_TTL.total_seconds() + 60
    with pytest.raises(EnrolmentRefused, match="expired"):
        two_factor.confirm_enrolment(
            user.id, code_at(second.secret, time_step(later)), CLIENT, throttle, now=later
        )
    two_factor.cancel_enrolment(user.id)
    assert stored() == []


def test_the_secret_is_stored_encrypted_and_bound_to_its_user(
    app_db: Settings, throttle: Throttle
) -> None:
    user, secret, codes = enrolled(throttle)
    other, _, _ = enrolled(throttle)
    rows = stored()
    text = repr(rows)
    assert secret not in text and secret.lower() not in text
    assert not any(code in text or code.replace("-", "") in text for code in codes)
    with session_scope() as session:
        mine = session.get(TwoFactor, user.id)
        assert mine is not None and mine.secret_key_id == KEY.kid
        assert two_factor.unseal(mine.secret_ciphertext, mine.secret_key_id, user.id) == secret
        # A ciphertext copied to another user's row does not decrypt there.
        assert two_factor.unseal(mine.secret_ciphertext, mine.secret_key_id, other.id) is None


def test_key_rotation_rewraps_secrets_and_a_lost_key_leaves_recovery_codes(
    app_db: Settings, throttle: Throttle
) -> None:
    user, secret, codes = enrolled(throttle)
    assert user.id is not None
    new_key = SigningKey("test-2", secrets.token_bytes(32))
    override_settings(make_settings(database_url=app_db.database_url, signing_keys=(new_key, KEY)))
    assert two_factor.rewrap_secrets() == (1, 0)
    with session_scope() as session:
        row = session.get(TwoFactor, user.id)
        assert row is not None and row.secret_key_id == "test-2"
    # Only the new key left: the secret still decrypts, codes still work.
    override_settings(make_settings(database_url=app_db.database_url, signing_keys=(new_key,)))
    assert check_code(user.id, code_at(secret, time_step(NOW)), CLIENT, throttle, now=NOW).kind == (
        "totp"
    )
    # A key dropped before the rewrap: app codes fail, recovery codes still sign in.
    override_settings(
        make_settings(
            database_url=app_db.database_url,
            signing_keys=(SigningKey("test-3", secrets.token_bytes(32)),),
        )
    )
    with pytest.raises(CodeRefused):
        check_code(user.id, code_at(secret, time_step(NOW) + 1), CLIENT, throttle, now=NOW)
    assert check_code(user.id, codes[0], CLIENT, throttle, now=NOW).kind == "recovery_code"


# --- checking codes -------------------------------------------------------------------------


def test_a_used_code_is_refused_again_and_so_is_an_earlier_one(
    app_db: Settings, throttle: Throttle
) -> None:
    user, secret, _ = enrolled(throttle)
    assert user.id is not None
    step = time_step(NOW)
    accepted = check_code(user.id, code_at(secret, step), CLIENT, throttle, now=NOW)
    assert accepted == two_factor.Accepted("totp", 10)
    with pytest.raises(CodeRefused, match="works once"):
        check_code(user.id, code_at(secret, step), CLIENT, throttle, now=NOW + 1)
    with pytest.raises(CodeRefused):  # drift back one step: still not after the last one
        check_code(user.id, code_at(secret, step - 1), CLIENT, throttle, now=NOW)
    # The next step's code, within one step of drift, is fine.
    assert check_code(user.id, code_at(secret, step + 1), CLIENT, throttle, now=NOW).kind == "totp"


def test_drift_through_the_service(app_db: Settings, throttle: Throttle) -> None:
    user, secret, _ = enrolled(throttle, now=NOW - 300)  # confirmed long before NOW
    assert user.id is not None
    step = time_step(NOW)
    for offset in (2, -2):
        with pytest.raises(CodeRefused):
            check_code(user.id, code_at(secret, step + offset), CLIENT, throttle, now=NOW)
    assert check_code(user.id, code_at(secret, step - 1), CLIENT, throttle, now=NOW).kind == "totp"
    assert check_code(user.id, code_at(secret, step + 1), CLIENT, throttle, now=NOW).kind == "totp"


@pytest.mark.usefixtures("any_db")
def test_two_requests_with_one_code_get_one_acceptance() -> None:
    throttle = make_throttle(make_settings(), key_prefix=f"test-2fa-{secrets.token_hex(4)}")
    user, secret, codes = enrolled(throttle)
    assert user.id is not None
    uid = user.id
    code = code_at(secret, time_step(NOW))
    results = all_at_once([attempt(lambda: check_code(uid, code, CLIENT, throttle, now=NOW))] * 4)
    assert sum(isinstance(r, two_factor.Accepted) for r in results) == 1
    assert all(isinstance(r, two_factor.Accepted | CodeRefused) for r in results), results
    results = all_at_once(
        [attempt(lambda: check_code(uid, codes[3], CLIENT, throttle, now=NOW))] * 4
    )
    assert sum(isinstance(r, two_factor.Accepted) for r in results) == 1


def test_recovery_codes_are_single_use_and_per_user(app_db: Settings, throttle: Throttle) -> None:
    user, _, codes = enrolled(throttle)
    other, _, other_codes = enrolled(throttle)
    assert user.id is not None and other.id is not None
    with pytest.raises(CodeRefused):  # another user's code
        check_code(user.id, other_codes[0], CLIENT, throttle, now=NOW)
    typed = "  " + codes[0].upper().replace("-", " ") + " "  # as someone copies it by hand
    assert check_code(user.id, typed, CLIENT, throttle, now=NOW) == two_factor.Accepted(
        "recovery_code", 9
    )
    with pytest.raises(CodeRefused, match="has been used"):
        check_code(user.id, codes[0], CLIENT, throttle, now=NOW)
    assert two_factor.status(user.id).recovery_codes_left == 9
    assert two_factor.status(other.id).recovery_codes_left == 10
    with pytest.raises(CodeRefused):
        check_code(other.id, "x" * 500, CLIENT, throttle, now=NOW)


def test_codes_are_throttled_before_they_are_checked(app_db: Settings, throttle: Throttle) -> None:
    user, secret, codes = enrolled(throttle)
    assert user.id is not None
    step = time_step(NOW)
    wrong = code_at(secret, step + 5)
    for _ in range(5):
        with pytest.raises(CodeRefused):
            check_code(user.id, wrong, CLIENT, throttle, now=NOW)
    # The sixth try is refused before any check: even the right code, or a recovery code.
    for code in (code_at(secret, step), codes[0]):
        with pytest.raises(TwoFactorThrottled, match="Too many wrong codes"):
            check_code(user.id, code, CLIENT, throttle, now=NOW)
    assert two_factor.status(user.id).recovery_codes_left == 10  # nothing was used
    # Another address does not help: the count is the account's.
    with pytest.raises(TwoFactorThrottled):
        check_code(user.id, code_at(secret, step), "198.51.100.9", throttle, now=NOW)


def test_an_accepted_code_clears_the_accounts_count(app_db: Settings, throttle: Throttle) -> None:
    user, secret, _ = enrolled(throttle)
    assert user.id is not None
    step = time_step(NOW)
    for round_ in range(3):
        for _ in range(4):
            with pytest.raises(CodeRefused):
                check_code(user.id, "000000", CLIENT, throttle, now=NOW + 30 * round_)
        code = code_at(secret, step + round_)
        assert check_code(user.id, code, CLIENT, throttle, now=NOW + 30 * round_).kind == "totp"


def test_the_daily_limit_holds_across_short_windows(app_db: Settings) -> None:
    throttle = make_throttle(app_db, key_prefix=f"test-2fa-{secrets.token_hex(4)}")
    user, secret, _ = enrolled(throttle)
    assert user.id is not None
    short = throttle.second_factor_per_account
    for _window in range(4):  # 4 windows x 5 = the day's 20
        for _ in range(5):
            with pytest.raises(CodeRefused):
                check_code(user.id, "000000", CLIENT, throttle, now=NOW)
        throttle.counters.clear((short, "second-factor-account", f"user:{user.id}"))
    with pytest.raises(TwoFactorThrottled):
        check_code(user.id, code_at(secret, time_step(NOW)), CLIENT, throttle, now=NOW)


def test_turning_off_needs_the_password_and_a_code(app_db: Settings, throttle: Throttle) -> None:
    user, secret, codes = enrolled(throttle)
    assert user.id is not None
    with pytest.raises(CodeRefused):
        two_factor.turn_off(user, PASSWORD, "", CLIENT, throttle, now=NOW)
    with pytest.raises(WrongPassword):
        two_factor.turn_off(user, "wrong password!", codes[0], CLIENT, throttle, now=NOW)
    with pytest.raises(CodeRefused):
        two_factor.turn_off(user, PASSWORD, "123456", CLIENT, throttle, now=NOW)
    assert two_factor.is_enrolled(user.id)
    two_factor.turn_off(user, PASSWORD, code_at(secret, time_step(NOW)), CLIENT, throttle, now=NOW)
    assert not two_factor.is_enrolled(user.id) and stored() == []
    with pytest.raises(EnrolmentRefused):
        two_factor.turn_off(user, PASSWORD, codes[1], CLIENT, throttle, now=NOW)


def test_password_attempts_in_settings_are_counted_like_logins(
    app_db: Settings, throttle: Throttle
) -> None:
    user = new_user()
    for _ in range(5):
        with pytest.raises(WrongPassword):
            two_factor.begin_enrolment(user, "not my password", CLIENT, throttle)
    with pytest.raises(Throttled):
        two_factor.begin_enrolment(user, PASSWORD, CLIENT, throttle)


def test_the_rewrap_command_moves_secrets_to_the_current_key(
    app_db: Settings, throttle: Throttle, capsys: pytest.CaptureFixture[str]
) -> None:
    from onboard_app.cli import main

    enrolled(throttle)
    new_key = SigningKey("test-2", secrets.token_bytes(32))
    override_settings(make_settings(database_url=app_db.database_url, signing_keys=(new_key, KEY)))
    assert main(["rewrap-two-factor"]) == 0
    assert "re-encrypted under key test-2: 1" in capsys.readouterr().out
    assert main(["rewrap-two-factor"]) == 0  # nothing left to do
    assert "test-2: 0" in capsys.readouterr().out
    lost = SigningKey("test-3", secrets.token_bytes(32))
    override_settings(make_settings(database_url=app_db.database_url, signing_keys=(lost,)))
    assert main(["rewrap-two-factor"]) == 1
    assert "1 secret(s) could not be decrypted" in capsys.readouterr().err
