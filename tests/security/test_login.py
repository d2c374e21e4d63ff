"""Login and signup attacked through the real handlers (``LoginState``, ``SignupState``).

``tests/unit/test_accounts.py`` covers the service with a private throttle; here the
handlers use the app's own throttle (``make_throttle(get_settings())``), and each test
checks what the visitor sees, that no session starts and that the account is untouched.
The reverse-proxy tests run a real production backend and speak its websocket protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import unicodedata
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.reflex_client import OnboardClient, OnboardNames
from onboard_app.services import password_policy, passwords
from onboard_app.services.accounts import LOGIN_FAILED
from onboard_app.services.users import create_external_user, get_user_by_email
from onboard_app.settings import Settings, override_settings
from onboard_app.state.auth import LoginState, SignupState, VerifyEmailState
from onboard_app.state.session import SessionState
from tests.conftest import make_settings
from tests.e2e.conftest import app_environment, free_port
from tests.security.conftest import (
    PASSWORD,
    ROOT,
    new_tab,
    rows_of,
    sign_up,
    snapshot,
    unique_email,
    unique_ip,
)
from tests.state.harness import Client, redirects, toasts
from tests.state.mail import mails_to, sign_up_and_confirm

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else "python"


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
    ("a@example.com", "x" * 7, {"password": password_policy.TOO_SHORT}),
    ("a@example.com", "x" * 257, {"password": "Use at most 256 characters."}),
    ("a@example.com", "x" * 100_000, {"password": "Use at most 256 characters."}),
    ("a@example.com", "pass\x00word-long", {"password": password_policy.BAD_CHARACTERS}),
    ("a@example.com", "vivid\ud800otter quilt", {"password": password_policy.BAD_CHARACTERS}),
    ("a@example.com", " " * 12, {"password": "The password cannot be only spaces."}),
    ("a@example.com", 12345678, {"password": "Enter a password."}),
    ("a@example.com", "password123", {"password": password_policy.COMMON}),
    ("a@example.com", "P@ssw0rd!", {"password": password_policy.LIKE_COMMON}),
    ("ada.lovelace@example.com", "adalovelace1815", {"password": password_policy.PERSONAL}),
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
    long_phrase = ("vivid otter quilt marmalade harbor " * 8)[:256]
    cases = [
        (unique_email("len8"), "tqmz8#vk", "tqmz8#vk"),
        (unique_email("len256"), long_phrase, long_phrase),
        (unique_email("unicode"), nfc, nfd),  # typed differently on another device
        (unique_email("quote").replace("-", "+o'brien-"), "O'Brien; DROP TABLE users", None),
    ]
    for email, password, login_with in cases:
        events = await sign_up_and_confirm(new_tab(), email.upper(), password)
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


# --- parallel bursts with several hash slots ------------------------------------------------


class CountingVerify:
    """Wraps ``passwords.verify_password``: which stored hash each real check was against."""

    def __init__(self) -> None:
        self.real = passwords.verify_password
        self.against: list[str | None] = []

    def __call__(self, password_hash: str | None, password: str) -> bool:
        self.against.append(password_hash)
        return self.real(password_hash, password)


@pytest.fixture
def eight_slots(app_db: Settings) -> Iterator[Settings]:
    """The app's settings with 8 password hashes computed at once."""
    value = make_settings(database_url=app_db.database_url, password_hash_slots=8)
    override_settings(value)
    yield value
    override_settings(app_db)


async def test_thirty_parallel_guesses_check_five_passwords_of_the_account(
    eight_slots: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await sign_up()
    stored = get_user_by_email(owner.email)
    assert stored is not None
    checks = CountingVerify()
    monkeypatch.setattr(passwords, "verify_password", checks)
    results = await asyncio.gather(*(attempt(owner.email, f"guess number {i}") for i in range(30)))
    assert checks.against.count(stored.password_hash) == len(checks.against) == 5
    errors = sorted(seen(tab, events)["form_error"] for tab, events in results)
    locked = "Too many failed attempts. Try again in 15 minutes."
    assert errors == sorted([LOGIN_FAILED] * 5 + [locked] * 25)
    assert not any(tab.state(SessionState).signed_in for tab, _ in results)


async def test_thirty_parallel_guesses_from_one_address_check_its_limit(
    eight_slots: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = CountingVerify()
    monkeypatch.setattr(passwords, "verify_password", checks)
    sprayer = unique_ip()
    results = await asyncio.gather(
        *(attempt(unique_email("sprayed"), "Summer2024!", ip=sprayer) for _ in range(30))
    )
    assert len(checks.against) == eight_slots.login_max_failures_per_client == 20
    errors = [seen(tab, events)["form_error"] for tab, events in results]
    assert errors.count(LOGIN_FAILED) == 20
    assert all(e.startswith("Too many failed attempts.") for e in errors if e != LOGIN_FAILED)


# --- sign-up of a registered email ---------------------------------------------------------


def user_id(email: str) -> int:
    user = get_user_by_email(email)
    assert user is not None and user.id is not None
    return user.id


async def test_signing_up_a_registered_address_looks_and_costs_the_same(
    app_db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered = await sign_up()
    unconfirmed = unique_email("pending")
    pending_tab = new_tab()
    pending_tab.navigate("/signup")
    await pending_tab.call(SignupState.sign_up, {"email": unconfirmed, "password": PASSWORD})
    hashes: list[str] = []
    real = passwords.hash_password
    monkeypatch.setattr(passwords, "hash_password", lambda p: hashes.append(p) or real(p))
    ids = {email: user_id(email) for email in (registered.email, unconfirmed)}
    before = {email: rows_of(app_db, ids[email]) for email in ids}
    outcomes = {}
    for label, email in (
        ("registered", registered.email),
        ("unconfirmed", unconfirmed),
        ("new", unique_email("fresh")),
    ):
        hashes.clear()
        tab = new_tab()
        tab.navigate("/signup")
        events = await tab.call(
            SignupState.sign_up, {"email": email, "password": "another fine password"}
        )
        screen = tab.state(VerifyEmailState)
        outcomes[label] = {
            "redirects": redirects(events),
            "toasts": toasts(events),
            "form": (tab.state(SignupState).form_error, dict(tab.state(SignupState).field_errors)),
            "screen": (screen.waiting, screen.notice, screen.form_error, screen.busy),
            "shows": screen.email == email,
            "token": tab.state(SessionState).token,
            "hashes": len(hashes),
        }
    assert outcomes["registered"] == outcomes["unconfirmed"] == outcomes["new"], outcomes
    assert outcomes["new"]["redirects"] == ["/verify-email"] and outcomes["new"]["hashes"] == 1
    for email, rows in before.items():  # nothing of either account changed
        assert rows_of(app_db, ids[email]) == rows
    # Only the mails differ, and only their recipients see them.
    assert mails_to(registered.email)[0].kind == "signup_attempt"
    assert [m.kind for m in mails_to(unconfirmed)][:2] == ["signup_attempt", "verify_email"]


# --- sign-up throttle -----------------------------------------------------------------------


async def test_sign_ups_from_one_address_are_throttled_with_a_form_message(
    app_db: Settings,
) -> None:
    override_settings(make_settings(database_url=app_db.database_url, signup_max_per_client=3))
    try:
        address = unique_ip()
        for _ in range(3):
            await sign_up(Client(ip=address))
        tab = Client(ip=address)
        tab.navigate("/signup")
        before = snapshot(app_db)
        email = unique_email("fourth")
        events = await tab.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
        form = tab.state(SignupState)
        assert form.form_error == "Too many sign-ups from your network. Try again in 15 minutes."
        assert dict(form.field_errors) == {} and form.busy is False
        assert redirects(events) == [] and tab.state(SessionState).token == ""
        assert snapshot(app_db) == before
        # Someone at another address signs up as usual.
        await sign_up(email=email)
    finally:
        override_settings(app_db)


# --- behind a reverse proxy (a real production backend) -------------------------------------


@contextlib.contextmanager
def production_backend(tmp: Path, **extra: str) -> Iterator[str]:
    """``reflex run --env prod --backend-only`` on a free port; yields its address.

    Two failed logins per client address lock it (the per-account limit is out of reach),
    so each attempt shows which address the app counted it against.
    """
    port = free_port()
    env = app_environment(
        tmp,
        port,
        REFLEX_WEB_WORKDIR=str(tmp / "web"),
        ONBOARD_LOGIN_MAX_FAILURES_PER_CLIENT="2",
        ONBOARD_LOGIN_MAX_FAILURES_PER_ACCOUNT="100",
        **extra,
    )
    env.setdefault("ONBOARD_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    subprocess.run([PYTHON, "-m", "onboard_app.cli", "migrate"], cwd=ROOT, env=env, check=True)
    log_path = tmp / "backend.log"
    command = [PYTHON, "-m", "reflex", "run", "--env", "prod", "--backend-only"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--backend-port", str(port), "--loglevel", "info"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the backend did not answer /ping"
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


async def failed_login_via(url: str, forwarded_for: str) -> str:
    """A wrong-password login over the real websocket, through a proxy adding ``forwarded_for``.

    Returns:
        The form error the page shows.
    """
    tab = OnboardClient(url, OnboardNames.resolve(), origin=url)
    connect = tab._sio.connect  # the handshake is where a proxy adds its header

    async def through_proxy(*args: Any, headers: dict[str, str], **kwargs: Any) -> Any:
        return await connect(*args, headers={**headers, "X-Forwarded-For": forwarded_for}, **kwargs)

    tab._sio.connect = through_proxy  # type: ignore[method-assign]
    try:
        await tab.connect("/login")
        await tab.log_in(unique_email("proxied"), "wrong password")
        return tab.form_error
    finally:
        await tab.close()


async def test_behind_a_trusted_proxy_the_throttle_keys_on_the_forwarded_address(
    tmp_path: Path,
) -> None:
    with production_backend(tmp_path, ONBOARD_TRUSTED_PROXY_HOPS="1") as url:
        assert await failed_login_via(url, "198.51.100.1") == LOGIN_FAILED
        assert await failed_login_via(url, "198.51.100.1") == LOGIN_FAILED
        # The address the proxy saw is locked, whatever the client wrote before it.
        locked = await failed_login_via(url, "203.0.113.50, 198.51.100.1")
        assert locked.startswith("Too many failed attempts.")
        # Another visitor behind the same proxy (one socket address) is not.
        assert await failed_login_via(url, "198.51.100.2") == LOGIN_FAILED


async def test_without_trusted_proxies_forwarded_headers_are_ignored(tmp_path: Path) -> None:
    with production_backend(tmp_path) as url:
        assert await failed_login_via(url, "198.51.100.1") == LOGIN_FAILED
        assert await failed_login_via(url, "198.51.100.2") == LOGIN_FAILED
        # A made-up header does not buy a fresh counter: the socket's address is locked.
        assert (await failed_login_via(url, "198.51.100.3")).startswith("Too many failed")


def test_a_bad_trusted_proxy_setting_stops_the_app_with_a_clear_message() -> None:
    for value, problem in (("-1", "at least 0"), ("many", "a whole number"), ("11", "at most 10")):
        env = {**os.environ, "ONBOARD_TRUSTED_PROXY_HOPS": value}
        done = subprocess.run(
            [PYTHON, "-c", "import rxconfig"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert f"Onboard configuration error: ONBOARD_TRUSTED_PROXY_HOPS must be {problem}" in (
            done.stderr
        )
