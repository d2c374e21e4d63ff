"""Login and signup attacked through the real handlers (``LoginState``, ``SignupState``).

``tests/unit/test_accounts.py`` covers the service with a private throttle; here the
handlers use the app's own throttle (``make_throttle(get_settings())``), and each test
checks what the visitor sees, that no session starts and that the account is untouched.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from onboard_app.services import passwords
from onboard_app.services.accounts import LOGIN_FAILED
from onboard_app.services.users import create_external_user, get_user_by_email
from onboard_app.settings import Settings, override_settings
from onboard_app.state.auth import LoginState, SignupState
from onboard_app.state.session import SessionState
from tests.conftest import make_settings
from tests.security.conftest import (
    PASSWORD,
    new_tab,
    rows_of,
    sign_up,
    snapshot,
    unique_email,
    unique_ip,
)
from tests.state.harness import Client, redirects, toasts


async def attempt(email: object, password: object, ip: str | None = None) -> tuple[Client, list]:
    tab = Client(ip=ip or unique_ip())
    tab.navigate("/login")
    events = await tab.call(LoginState.log_in, {"email": email, "password": password})
    return tab, events


def seen(tab: Client, events: list) -> dict[str, Any]:
    """Everything the login page shows after an attempt."""
    form = tab.state(LoginState)
    session = tab.state(SessionState)
    return {
        "form_error": form.form_error,
        "field_errors": dict(form.field_errors),
        "busy": form.busy,
        "redirects": redirects(events),
        "toasts": toasts(events),
        "signed_in": session.signed_in,
        "token": session.token,
    }


# --- brute force and spraying ---------------------------------------------------------------


async def test_brute_force_on_one_account_locks_it_from_every_address(app_db: Settings) -> None:
    owner = await sign_up()
    owner_token = owner.token
    before = rows_of(app_db, owner.id)
    for guess in range(app_db.login_max_failures_per_account):
        tab, events = await attempt(owner.email, f"guess number {guess}")
        assert seen(tab, events)["form_error"] == LOGIN_FAILED
    # The right password, from yet another address: refused while the lock lasts.
    tab, events = await attempt(owner.email, PASSWORD)
    shown = seen(tab, events)
    assert shown["form_error"] == "Too many failed attempts. Try again in 15 minutes."
    assert shown["signed_in"] is False and shown["token"] == "" and shown["redirects"] == []
    # Case and spaces do not make a new account key.
    tab, events = await attempt(f"  {owner.email.upper()} ", PASSWORD)
    assert seen(tab, events)["form_error"].startswith("Too many failed attempts.")
    assert rows_of(app_db, owner.id) == before
    # The owner's open session is not thrown out by someone else's guessing.
    owner.tab.navigate("/onboarding/profile")
    assert await owner.tab.call(SessionState.guard) == []
    assert owner.tab.state(SessionState).token == owner_token


async def test_spraying_from_one_address_is_stopped_for_that_address(app_db: Settings) -> None:
    override_settings(
        make_settings(
            database_url=app_db.database_url,
            login_max_failures_per_client=4,
            login_max_failures_per_account=100,
        )
    )
    try:
        target = await sign_up()
        sprayer = unique_ip()
        for _ in range(4):
            tab, events = await attempt(unique_email("sprayed"), "Summer2024!", ip=sprayer)
            assert seen(tab, events)["form_error"] == LOGIN_FAILED
        tab, events = await attempt(target.email, PASSWORD, ip=sprayer)
        shown = seen(tab, events)
        assert shown["form_error"].startswith("Too many failed attempts.")
        assert shown["signed_in"] is False and shown["token"] == ""
        # Anyone else (another address) still logs in.
        tab, events = await attempt(target.email, PASSWORD)
        assert redirects(events) == ["/onboarding/profile"]
        assert tab.state(SessionState).signed_in
    finally:
        override_settings(app_db)


# --- one answer for every failure -----------------------------------------------------------


async def test_unknown_wrong_and_passwordless_accounts_look_and_cost_the_same(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = await sign_up()
    oauth_only = create_external_user(
        email=unique_email("octo"), display_name="Octo", avatar_url=None, github_id=4242
    )
    verifications: list[str] = []
    real = passwords.HASHER

    class CountingHasher:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, stored: str, candidate: str) -> bool:
            verifications.append(stored[:10])
            return real.verify(stored, candidate)

    monkeypatch.setattr(passwords, "HASHER", CountingHasher())
    before = snapshot(app_db)
    outcomes = {}
    for label, email in (
        ("wrong password", known.email),
        ("unknown account", unique_email("nobody")),
        ("passwordless account", oauth_only.email),
    ):
        verifications.clear()
        tab, events = await attempt(email, "not the password")
        shown = seen(tab, events)
        outcomes[label] = (shown, len(verifications))
        assert tab.state(LoginState).email == email  # the typed address is kept
    first = next(iter(outcomes.values()))
    assert all(outcome == first for outcome in outcomes.values()), outcomes
    shown, work = first
    assert shown["form_error"] == LOGIN_FAILED and shown["field_errors"] == {}
    assert shown["token"] == "" and shown["signed_in"] is False
    assert work == 1  # one argon2 verification in every case
    assert snapshot(app_db) == before


# --- password and email edge cases ----------------------------------------------------------

SIGNUP_REFUSALS: list[tuple[object, object, dict[str, str]]] = [
    ("a@example.com", "x" * 7, {"password": "Use at least 8 characters."}),
    ("a@example.com", "x" * 257, {"password": "Use at most 256 characters."}),
    ("a@example.com", "x" * 100_000, {"password": "Use at most 256 characters."}),
    (
        "a@example.com",
        "pass\x00word-long",
        {"password": "The password contains a character we cannot accept."},
    ),
    ("a@example.com", " " * 12, {"password": "The password cannot be only spaces."}),
    ("a@example.com", 12345678, {"password": "Enter a password."}),
    (
        "ada\x00@example.com",
        PASSWORD,
        {"email": "Enter a valid email address, like name@example.com."},
    ),
    (
        "ada\u202e@example.com",
        PASSWORD,
        {"email": "Enter a valid email address, like name@example.com."},
    ),
    (
        "a" * 65 + "@example.com",
        PASSWORD,
        {"email": "Enter a valid email address, like name@example.com."},
    ),
    (
        "a@" + "b" * 250 + ".com",
        PASSWORD,
        {"email": "Enter a valid email address, like name@example.com."},
    ),
    ("not an email", PASSWORD, {"email": "Enter a valid email address, like name@example.com."}),
    (["a@example.com"], PASSWORD, {"email": "Enter a valid email address, like name@example.com."}),
    (
        "' OR 1=1 --@example.com",
        PASSWORD,
        {"email": "Enter a valid email address, like name@example.com."},
    ),
]


@pytest.mark.parametrize(
    ("email", "password", "errors"), SIGNUP_REFUSALS, ids=lambda v: repr(v)[:24]
)
async def test_signup_refuses_edge_cases_inline_and_creates_nothing(
    app_db: Settings, email: object, password: object, errors: dict[str, str]
) -> None:
    tab = new_tab()
    tab.navigate("/signup")
    before = snapshot(app_db)
    events = await tab.call(SignupState.sign_up, {"email": email, "password": password})
    form = tab.state(SignupState)
    assert dict(form.field_errors) == errors
    assert redirects(events) == [] and form.busy is False
    assert tab.state(SessionState).token == ""
    assert snapshot(app_db) == before
    assert not isinstance(password, str) or password not in repr(tab.root.dict())


async def test_password_and_email_edges_that_must_work(app_db: Settings) -> None:
    nfc = unicodedata.normalize("NFC", "Çå fé ñ 密码 \U0001f511 long enough")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    cases = [
        (unique_email("len8"), "x" * 8, "x" * 8),
        (unique_email("len256"), "y" * 256, "y" * 256),
        (unique_email("unicode"), nfc, nfd),  # typed differently on another device
        (unique_email("quote").replace("-", "+o'brien-"), "O'Brien; DROP TABLE users", None),
    ]
    for email, password, login_with in cases:
        signup = new_tab()
        signup.navigate("/signup")
        events = await signup.call(
            SignupState.sign_up, {"email": email.upper(), "password": password}
        )
        assert redirects(events) == ["/onboarding/profile"], email
        stored = get_user_by_email(email.lower())
        assert stored is not None, email
        tab, events = await attempt(f" {email.title()} ", login_with or password)
        assert redirects(events) == ["/onboarding/profile"], email
        assert tab.state(SessionState).signed_in


async def test_login_refuses_nul_and_oversized_passwords_with_the_generic_message(
    app_db: Settings,
) -> None:
    person = await sign_up()
    for password in (PASSWORD + "\x00", "\x00" + PASSWORD, PASSWORD * 40, PASSWORD + "\u0000x"):
        tab, events = await attempt(person.email, password)
        assert seen(tab, events)["form_error"] == LOGIN_FAILED
        assert tab.state(SessionState).token == ""
