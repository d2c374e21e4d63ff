"""Account settings in the core: email, password, deletion (services/account_settings)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage

from onboard_app import routes
from onboard_app.models import User
from onboard_app.services import account_settings as core
from onboard_app.services import (
    email_links,
    oauth,
    password_policy,
    passwords,
    recovery,
    sessions,
    users,
)
from onboard_app.services.account_limits import AccountLimits
from onboard_app.services.accounts import FormErrors
from onboard_app.services.db import get_engine
from onboard_app.services.email_links import LinkPurpose, Refusal
from onboard_app.services.linking import ExternalIdentity
from onboard_app.services.mail import Mail, MailKind
from onboard_app.services.recovery import LinkRefused, Throttled
from onboard_app.services.throttle import Counters, Throttle
from onboard_app.services.tokens import TokenRejected
from onboard_app.settings import Settings
from tests.fakes.github import GitHubFake, GitHubUser
from tests.fakes.oidc import OidcProvider, start_oidc_provider
from tests.unit.test_oauth import (
    GITHUB_CALLBACK,
    OIDC_CALLBACK,
    browser_visit,
    github_settings,
    oidc_settings,
    query_of,
)

pytestmark = pytest.mark.usefixtures("app_db")

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "lantern drizzle oboe"
CLIENT = "203.0.113.20"


def throttle(per_account: int = 5) -> Throttle:
    """A fresh in-memory login throttle (make_throttle's storage is shared per process)."""
    return Throttle(
        counters=Counters(MemoryStorage()),
        login_per_account=RateLimitItemPerSecond(per_account, 900),
        login_per_client=RateLimitItemPerSecond(20, 900),
        signup_per_client=RateLimitItemPerSecond(10, 900),
    )


def limits() -> AccountLimits:
    return AccountLimits(Counters(MemoryStorage()))


def local(email: str = "ada@example.com") -> User:
    user = users.create_local_user(email, passwords.hash_password(PASSWORD))
    assert user.id is not None
    return user


def github_user(github_id: int = 4242, email: str | None = "octo@example.com") -> User:
    return users.create_external_user(
        email=email, display_name="Octo", avatar_url=None, github_id=github_id
    )


def token_of(link: str | None) -> str:
    assert link is not None
    parts = urlsplit(link)
    assert parts.query == ""
    token = routes.link_token(parts.fragment)
    assert token
    return token


def request(user: User, new_email: str, **changes: object) -> tuple[str, list[Mail]]:
    assert user.id is not None
    args: dict[str, object] = {
        "new_email": new_email,
        "password": PASSWORD,
        "client": CLIENT,
        "throttle": throttle(),
        "limits": limits(),
    }
    args.update(changes)
    return core.request_email_change(user.id, **args)  # type: ignore[arg-type]


def link_rows(settings: Settings, user_id: int) -> list[tuple[str, str | None]]:
    with get_engine(settings.database_url).connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT purpose, new_email FROM email_links WHERE user_id = :id ORDER BY purpose"
            ),
            {"id": user_id},
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def count(settings: Settings, table: str, user_id: int) -> int:
    column = "id" if table == "users" else "user_id"
    with get_engine(settings.database_url).connect() as connection:
        return int(
            connection.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :id"), {"id": user_id}
            ).scalar_one()
        )


# --- email change ---------------------------------------------------------------------------


def test_a_change_mails_the_new_address_and_tells_the_old_one(app_db: Settings) -> None:
    user = local()
    address, mails = request(user, "  Ada.New@Example.com ")
    assert address == "ada.new@example.com"
    verify, notice = mails
    assert (verify.kind, verify.to) == (MailKind.EMAIL_CHANGE_VERIFY, "ada.new@example.com")
    assert verify.link and verify.link.startswith(f"{app_db.public_url}/confirm-email#token=")
    assert (notice.kind, notice.to) == (MailKind.EMAIL_CHANGE_NOTICE, "ada@example.com")
    assert "ada.new@example.com" in notice.text
    # The old address gets a one-time reset link of its own, for an owner who did not ask.
    assert notice.link and notice.link.startswith(f"{app_db.public_url}/reset-password#token=")
    assert recovery.reset_link_account(token_of(notice.link)) == recovery.ResetAccount(
        user.id or 0, "ada@example.com", ""
    )
    # Nothing changes until the new address is confirmed.
    assert users.get_user(user.id or 0).email == "ada@example.com"  # type: ignore[union-attr]
    assert core.pending_email_change(user.id or 0) == "ada.new@example.com"


def test_a_taken_address_gets_the_same_answer_and_writes_and_its_owner_a_mail(
    app_db: Settings,
) -> None:
    asker, owner, control = local(), local("taken@example.com"), local("free-asker@example.com")
    assert asker.id and owner.id and control.id
    address, mails = request(asker, "Taken@example.com")
    free_address, free_mails = request(control, "free@example.com")
    assert address == "taken@example.com"
    attempt, notice = mails
    # The asker's side is identical: the same answer, the notice, the same rows.
    assert [m.kind for m in free_mails][1:] == [notice.kind]
    assert link_rows(app_db, asker.id) == [
        ("change_email", "taken@example.com"),
        ("reset_password", None),
    ]
    assert [p for p, _ in link_rows(app_db, control.id)] == ["change_email", "reset_password"]
    assert core.pending_email_change(asker.id) == "taken@example.com"
    # The owner of the address learns of it, with nothing that could confirm it.
    assert (attempt.kind, attempt.to) == (MailKind.EMAIL_CHANGE_ATTEMPT, "taken@example.com")
    assert "#token=" not in attempt.text and f"{app_db.public_url}/login" in attempt.text
    assert free_mails[0].kind is MailKind.EMAIL_CHANGE_VERIFY and free_address
    assert users.get_user(owner.id).email == "taken@example.com"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("new_email", "password", "errors"),
    [
        ("not-an-address", PASSWORD, {core.NEW_EMAIL: recovery.ENTER_EMAIL}),
        ("ADA@example.com", PASSWORD, {core.NEW_EMAIL: core.SAME_EMAIL}),
        ("new@example.com", "", {core.CURRENT_PASSWORD: core.ENTER_PASSWORD}),
        (
            None,
            12,
            {core.NEW_EMAIL: recovery.ENTER_EMAIL, core.CURRENT_PASSWORD: core.ENTER_PASSWORD},
        ),
    ],
)
def test_bad_change_requests_are_field_errors_and_count_no_password(
    new_email: object, password: object, errors: dict[str, str]
) -> None:
    user = local()
    counters = throttle(per_account=1)
    with pytest.raises(FormErrors) as info:
        request(user, new_email, password=password, throttle=counters)  # type: ignore[arg-type]
    assert info.value.errors == errors
    # Nothing was counted: the one allowed attempt is still there.
    assert request(user, "new@example.com", throttle=counters)[0] == "new@example.com"


def test_a_wrong_password_is_counted_like_a_login_and_throttled() -> None:
    user = local()
    counters = throttle(per_account=3)
    for _ in range(3):
        with pytest.raises(core.WrongPassword) as info:
            request(user, "new@example.com", password="not my password", throttle=counters)
        assert info.value.errors == {core.CURRENT_PASSWORD: core.WRONG_PASSWORD}
    # The fourth attempt is refused before its check, even with the right password ...
    with pytest.raises(Throttled) as refused:
        request(user, "new@example.com", throttle=counters)
    assert str(refused.value).startswith(core.TOO_MANY_PASSWORDS)
    # ... and it is the login's own counter: logging in is throttled too.
    assert counters.start_login("ada@example.com", "198.51.100.1") > 0
    assert core.pending_email_change(user.id or 0) is None


def test_the_right_password_clears_the_accounts_failures() -> None:
    user = local()
    counters = throttle(per_account=2)
    with pytest.raises(core.WrongPassword):
        request(user, "new@example.com", password="nope nope nope", throttle=counters)
    request(user, "new@example.com", throttle=counters)
    for _ in range(2):
        with pytest.raises(core.WrongPassword):
            request(user, "new@example.com", password="nope nope nope", throttle=counters)


def test_mails_to_the_new_address_are_limited_like_every_mail() -> None:
    user = local()
    shared = limits()
    for _ in range(shared.mails_per_recipient.amount):
        request(user, "new@example.com", limits=shared)
    with pytest.raises(Throttled):
        request(user, "new@example.com", limits=shared)


def test_the_link_makes_the_change_once() -> None:
    user = local()
    _, (verify, _) = request(user, "new@example.com")
    before = users.get_user(user.id or 0)
    assert before is not None
    changed = core.confirm_with_token(token_of(verify.link), user.id)
    assert changed.email == "new@example.com" and changed.email_verified_at is not None
    # Nothing about the session changes: the caller re-mints from this row.
    assert changed.token_version == before.token_version
    assert core.pending_email_change(user.id or 0) is None
    with pytest.raises(LinkRefused) as info:
        core.confirm_with_token(token_of(verify.link), user.id)
    assert info.value.reason is Refusal.USED
    # The account signs in with its new address.
    assert users.get_user_by_email("new@example.com") is not None
    assert users.get_user_by_email("ada@example.com") is None


def test_another_users_link_is_refused_and_stays_its_owners() -> None:
    alice, mallory = local("alice@example.com"), local("mallory@example.com")
    _, (verify, _) = request(alice, "alice.new@example.com")
    with pytest.raises(LinkRefused) as info:
        core.confirm_with_token(token_of(verify.link), mallory.id)
    assert info.value.reason is Refusal.INVALID
    assert users.get_user(mallory.id or 0).email == "mallory@example.com"  # type: ignore[union-attr]
    # Opened where nobody is signed in, the link alone makes its owner's change.
    assert core.confirm_with_token(token_of(verify.link), None).id == alice.id


@pytest.mark.parametrize("token", [None, "", "x" * 400, "a" * 43, 12, ["a" * 43]])
def test_odd_tokens_are_invalid(token: object) -> None:
    with pytest.raises(LinkRefused) as info:
        core.confirm_with_token(token, None)
    assert info.value.reason is Refusal.INVALID


def test_the_code_makes_the_change_for_its_own_user_only() -> None:
    alice, bob = local("alice@example.com"), local("bob@example.com")
    _, (verify, _) = request(alice, "alice.new@example.com")
    code = next(
        line.strip().replace(" ", "")
        for line in verify.text.splitlines()
        if line.startswith("    ")
    )
    with pytest.raises(LinkRefused):
        core.confirm_with_code(code, bob.id or 0, "bob@example.com", limits())
    with pytest.raises(LinkRefused):
        core.confirm_with_code(
            "000000" if code != "000000" else "111111", alice.id or 0, "alice@example.com", limits()
        )
    with pytest.raises(FormErrors) as empty:
        core.confirm_with_code("  ", alice.id or 0, "alice@example.com", limits())
    assert empty.value.errors == {core.CODE: core.ENTER_CODE}
    changed = core.confirm_with_code(code, alice.id or 0, "alice@example.com", limits())
    assert changed.email == "alice.new@example.com"


def test_typed_codes_are_limited_per_address() -> None:
    user = local()
    request(user, "new@example.com")
    shared = limits()
    for _ in range(shared.codes_per_recipient.amount):
        with pytest.raises(LinkRefused):
            core.confirm_with_code("000000", user.id or 0, "ada@example.com", shared)
    with pytest.raises(Throttled):
        core.confirm_with_code("000000", user.id or 0, "ada@example.com", shared)


def test_an_address_taken_meanwhile_changes_nothing() -> None:
    user = local()
    _, (verify, _) = request(user, "new@example.com")
    local("new@example.com")  # someone signed up with it before the link was opened
    with pytest.raises(core.EmailUnavailable):
        core.confirm_with_token(token_of(verify.link), user.id)
    assert users.get_user(user.id or 0).email == "ada@example.com"  # type: ignore[union-attr]


def test_cancelling_drops_the_link(app_db: Settings) -> None:
    user = local()
    _, (verify, _) = request(user, "new@example.com")
    core.cancel_email_change(user.id or 0)
    assert core.pending_email_change(user.id or 0) is None
    with pytest.raises(LinkRefused):
        core.confirm_with_token(token_of(verify.link), user.id)


def test_the_notices_reset_link_stops_a_pending_change_and_works_after_one() -> None:
    user = local()
    _, (verify, notice) = request(user, "thief@example.com")
    recovery.reset_password(token_of(notice.link), NEW_PASSWORD)
    assert core.pending_email_change(user.id or 0) is None
    with pytest.raises(LinkRefused):
        core.confirm_with_token(token_of(verify.link), None)
    # Confirmed before the owner noticed: the notice's link still gets the owner back in.
    _, (verify, notice) = request(user, "thief@example.com", password=NEW_PASSWORD)
    core.confirm_with_token(token_of(verify.link), None)
    back = recovery.reset_password(token_of(notice.link), "quartz meadow trumpet")
    assert passwords.verify_password(back.password_hash, "quartz meadow trumpet")


def test_accounts_without_a_password_have_nothing_to_change() -> None:
    octo = github_user()
    assert octo.id is not None
    assert core.account(octo.id) == core.Account(octo.id, "octo@example.com", False, "github", None)
    with pytest.raises(core.NoPassword):
        request(octo, "new@example.com")
    with pytest.raises(core.NoPassword):
        core.change_password(octo.id, "x", NEW_PASSWORD, "0" * 32, CLIENT, throttle())
    with pytest.raises(core.NoPassword):
        core.delete_with_password(octo.id, "x", "DELETE", CLIENT, throttle())


# --- password change ------------------------------------------------------------------------


def test_changing_the_password_keeps_this_session_and_ends_the_others(
    app_db: Settings,
) -> None:
    user = local()
    here = sessions.start_session(user)
    there = sessions.start_session(user)
    kept = sessions.authenticate(here)
    assert isinstance(kept, sessions.Authenticated)
    changed = core.change_password(
        user.id or 0, PASSWORD, NEW_PASSWORD, kept.session_id, CLIENT, throttle()
    )
    assert passwords.verify_password(changed.password_hash, NEW_PASSWORD)
    assert not passwords.verify_password(changed.password_hash, PASSWORD)
    assert isinstance(sessions.authenticate(there), TokenRejected)
    # This tab's token, re-minted from the row, is valid.
    fresh = sessions.remint(changed, kept.claims)
    assert isinstance(sessions.authenticate(fresh), sessions.Authenticated)


@pytest.mark.parametrize(
    ("current", "new", "errors"),
    [
        ("", NEW_PASSWORD, {core.CURRENT_PASSWORD: core.ENTER_PASSWORD}),
        (PASSWORD, "short", {core.NEW_PASSWORD: password_policy.TOO_SHORT}),
        (PASSWORD, PASSWORD, {core.NEW_PASSWORD: core.SAME_PASSWORD}),
        (PASSWORD, "password123", None),
        (PASSWORD, "ada@example.com1", None),
    ],
)
def test_a_refused_new_password_says_why_and_costs_no_attempt(
    current: str, new: str, errors: dict[str, str] | None
) -> None:
    user = local()
    counters = throttle(per_account=1)
    with pytest.raises(FormErrors) as info:
        core.change_password(user.id or 0, current, new, "0" * 32, CLIENT, counters)
    assert not isinstance(info.value, core.WrongPassword)
    if errors is not None:
        assert info.value.errors == errors
    else:
        assert list(info.value.errors) == [core.NEW_PASSWORD]
    stored = users.get_user(user.id or 0)
    assert stored is not None and passwords.verify_password(stored.password_hash, PASSWORD)
    # The one attempt the throttle allows is still there.
    core.change_password(user.id or 0, PASSWORD, NEW_PASSWORD, "0" * 32, CLIENT, counters)


def test_a_wrong_current_password_changes_nothing() -> None:
    user = local()
    with pytest.raises(core.WrongPassword):
        core.change_password(
            user.id or 0, "not it at all", NEW_PASSWORD, "0" * 32, CLIENT, throttle()
        )
    stored = users.get_user(user.id or 0)
    assert stored is not None and passwords.verify_password(stored.password_hash, PASSWORD)
    assert stored.token_version == user.token_version


# --- deletion -------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["DELETE", "delete", "  Delete "])
def test_the_confirmation_word_in_any_case(typed: str) -> None:
    assert core.confirm_problem(typed) is None


@pytest.mark.parametrize("typed", ["", "DELET", "yes", None, 3, "DELETE ME"])
def test_anything_else_does_not_confirm(typed: object) -> None:
    assert core.confirm_problem(typed) == core.TYPE_TO_CONFIRM


def test_deleting_removes_the_account_and_everything_of_it(app_db: Settings) -> None:
    user = local()
    assert user.id is not None
    token = sessions.start_session(user)
    request(user, "new@example.com")  # pending links
    users.save_step(user.id, "profile", {"display_name": "Ada", "role": "developer", "bio": ""})
    assert count(app_db, "onboarding_events", user.id) > 0
    with pytest.raises(FormErrors) as refused:
        core.delete_with_password(user.id, "", "nope", CLIENT, throttle())
    assert refused.value.errors == {
        core.CONFIRM: core.TYPE_TO_CONFIRM,
        core.CURRENT_PASSWORD: core.ENTER_PASSWORD,
    }
    with pytest.raises(core.WrongPassword):
        core.delete_with_password(user.id, "wrong wrong wrong", "DELETE", CLIENT, throttle())
    assert count(app_db, "users", user.id) == 1

    deleted = core.delete_with_password(user.id, PASSWORD, "delete", CLIENT, throttle())
    assert deleted == core.Deleted(user.id, "ada@example.com")
    for table in (
        "users",
        "onboarding_answers",
        "onboarding_events",
        "onboarding_progress",
        "email_links",
        "device_sessions",
    ):
        assert count(app_db, table, user.id) == 0, table
    assert isinstance(sessions.authenticate(token), TokenRejected)
    mail = core.deleted_mail(deleted)
    assert mail is not None and (mail.kind, mail.to) == (
        MailKind.ACCOUNT_DELETED,
        "ada@example.com",
    )
    assert core.deleted_mail(core.Deleted(1, None)) is None


def test_a_provider_account_is_deleted_only_by_its_own_fresh_sign_in(app_db: Settings) -> None:
    octo = github_user(4242)
    assert octo.id is not None
    other = ExternalIdentity(provider="github", github_id=4343)
    with pytest.raises(FormErrors) as info:
        core.delete_after_reauthentication(octo.id, other)
    assert info.value.errors == {"form": core.ANOTHER_ACCOUNT}
    assert count(app_db, "users", octo.id) == 1
    mine = ExternalIdentity(provider="github", github_id=4242)
    assert core.delete_after_reauthentication(octo.id, mine).email == "octo@example.com"
    assert count(app_db, "users", octo.id) == 0


def test_what_proves_a_fresh_sign_in() -> None:
    now = time.time()
    issuer = "https://id.example.com"
    oidc_user = users.create_external_user(
        email=None, display_name="", avatar_url=None, oidc_issuer=issuer, oidc_subject="sub-1"
    )
    octo = github_user(77, email=None)
    password_user = local()

    def oidc(
        subject: str = "sub-1", auth_time: int | None = int(now), iss: str = issuer
    ) -> ExternalIdentity:
        return ExternalIdentity(
            provider="oidc", oidc_issuer=iss, oidc_subject=subject, auth_time=auth_time
        )

    assert core.reauthentication_problem(oidc_user, oidc()) is None
    assert core.reauthentication_problem(oidc_user, oidc(auth_time=int(now) - 290)) is None
    assert core.reauthentication_problem(oidc_user, oidc(auth_time=None)) == core.NOT_RECENT
    stale = int(now) - oauth.REAUTH_MAX_AGE - core.AUTH_TIME_LEEWAY - 5
    assert core.reauthentication_problem(oidc_user, oidc(auth_time=stale)) == core.NOT_RECENT
    future = int(now) + 600
    assert core.reauthentication_problem(oidc_user, oidc(auth_time=future)) == core.NOT_RECENT
    assert core.reauthentication_problem(oidc_user, oidc("sub-2")) == core.ANOTHER_ACCOUNT
    assert (
        core.reauthentication_problem(oidc_user, oidc(iss="https://evil.example.com"))
        == core.ANOTHER_ACCOUNT
    )
    github = ExternalIdentity(provider="github", github_id=77)
    assert core.reauthentication_problem(octo, github) is None
    assert core.reauthentication_problem(oidc_user, github) == core.ANOTHER_ACCOUNT
    # A password account proves itself with its password, never with a provider.
    assert core.reauthentication_problem(password_user, github) == core.ANOTHER_ACCOUNT


# --- the provider round trip ----------------------------------------------------------------


@pytest.fixture(scope="module")
def github_server() -> Iterator[GitHubFake]:
    with GitHubFake(redirect_uri=GITHUB_CALLBACK) as fake:
        yield fake


@pytest.fixture(scope="module")
def oidc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    provider = start_oidc_provider(tmp_path_factory.mktemp("oidc-account"))
    yield provider
    provider.stop()


def test_a_github_reauthentication_asks_for_the_account_picker(github_server: GitHubFake) -> None:
    github_server.reset()
    github_server.user = GitHubUser.with_verified_email("octo@example.com", id=4242)
    settings = github_settings(github_server)
    url, pending = asyncio.run(oauth.begin(settings, GITHUB_CALLBACK, reauthenticate=9))
    assert query_of(url)["prompt"] == "select_account"
    assert (pending.purpose, pending.user_id) == (oauth.REAUTHENTICATE, 9)
    assert oauth.PendingLogin.from_dict(pending.to_dict()) == pending
    identity = asyncio.run(oauth.complete(settings, pending, browser_visit(url), GITHUB_CALLBACK))
    assert (identity.github_id, identity.auth_time) == (4242, None)
    # A plain login asks for nothing of the kind.
    login_url, login = asyncio.run(oauth.begin(settings, GITHUB_CALLBACK))
    assert "prompt" not in query_of(login_url) and login.purpose == oauth.LOGIN


def test_an_oidc_reauthentication_asks_for_a_fresh_login_and_reads_auth_time(
    oidc_server: OidcProvider,
) -> None:
    oauth.clear_discovery_cache()
    now = int(time.time())
    oidc_server.configure(id_token_claims={"sub": "sub-1", "auth_time": now})
    try:
        settings = oidc_settings(oidc_server)
        url, pending = asyncio.run(oauth.begin(settings, OIDC_CALLBACK, reauthenticate=5))
        query = query_of(url)
        assert (query["prompt"], query["max_age"]) == ("login", str(oauth.REAUTH_MAX_AGE))
        identity = asyncio.run(oauth.complete(settings, pending, browser_visit(url), OIDC_CALLBACK))
        assert (identity.oidc_subject, identity.auth_time) == ("sub-1", now)
    finally:
        oidc_server.reset()


@pytest.mark.parametrize(
    "changes",
    [{"purpose": "admin"}, {"user_id": "5"}, {"user_id": True}, {"purpose": None}],
)
def test_a_pending_login_with_an_odd_purpose_is_refused(changes: dict[str, object]) -> None:
    pending = oauth.PendingLogin("github", "s" * 43, "v" * 86, None, 1.5, None, "login", None)
    assert oauth.PendingLogin.from_dict({**pending.to_dict(), **changes}) is None


def test_the_email_links_left_after_a_change(app_db: Settings) -> None:
    user = local()
    assert user.id is not None
    email_links.issue(user.id, LinkPurpose.VERIFY_EMAIL)
    _, (verify, _) = request(user, "new@example.com")
    core.confirm_with_token(token_of(verify.link), user.id)
    # The old address's verification has nothing left to confirm; its reset link stays.
    assert [p for p, _ in link_rows(app_db, user.id)] == ["change_email", "reset_password"]
