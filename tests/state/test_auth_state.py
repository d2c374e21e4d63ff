"""Login, sign-up and the "check your email" screen, with well-formed and crafted input."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from reflex_base.event import EventSpec

from onboard_app.services import accounts, password_policy
from onboard_app.services.accounts import LOGIN_FAILED
from onboard_app.services.users import get_user_by_email
from onboard_app.state.auth import LoginState, SignupState, VerifyEmailState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.state.conftest import PASSWORD, unique_email
from tests.state.harness import Client, redirects
from tests.state.mail import code_in, last_mail, mails_to, open_link, sign_up_and_confirm

pytestmark = pytest.mark.asyncio


def _calls(events: list, arg: str) -> list:
    """The values of argument ``arg`` of the events (each browser-side event has its own)."""
    return [
        getattr(value, "_var_value", value)
        for e in events
        if isinstance(e, EventSpec)
        for var, value in e.args
        if str(var) == arg
    ]


def focused(events: list) -> list[str]:
    """The fields (their refs) the events move the focus to."""
    return _calls(events, "ref")


def forgets_link_token(events: list) -> bool:
    """Whether the events drop the link's token from the address bar and history entry."""
    return any("history.replaceState" in code for code in _calls(events, "javascript_code"))


async def test_signup_answers_check_your_email_and_starts_no_session(client: Client) -> None:
    email = unique_email()
    client.navigate("/signup")
    events = await client.call(
        SignupState.sign_up, {"email": f"  {email.upper()} ", "password": PASSWORD}
    )
    assert redirects(events) == ["/verify-email"]
    user = get_user_by_email(email)
    assert user is not None and user.email_verified_at is None
    assert client.state(SessionState).signed_in is False and client.state(SessionState).token == ""
    screen = client.state(VerifyEmailState)
    assert (screen.email, screen.waiting, screen.form_error) == (email, True, "")
    assert last_mail(email).kind == "verify_email"


async def test_the_mailed_code_confirms_and_signs_in_at_the_first_step(client: Client) -> None:
    email = unique_email()
    events = await sign_up_and_confirm(client, email)
    assert redirects(events) == ["/onboarding/profile"]
    assert client.state(SessionState).signed_in and client.state(SessionState).user_email == email
    user = get_user_by_email(email)
    assert user is not None and user.email_verified_at is not None
    screen = client.state(VerifyEmailState)
    assert (screen.email, screen.waiting, screen._pending) == ("", False, None)


async def test_the_mailed_link_confirms_signs_in_and_leaves_the_address_bar(
    client: Client,
) -> None:
    email = unique_email()
    client.navigate("/signup")
    await client.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    elsewhere = Client()  # the mail is opened in another browser
    open_link(elsewhere, last_mail(email, "verify_email"))
    events = await elsewhere.call(VerifyEmailState.open_page)
    assert forgets_link_token(events)
    assert redirects(events) == ["/onboarding/profile"]
    assert elsewhere.state(SessionState).signed_in
    assert client.state(SessionState).signed_in is False  # the sign-up tab is not signed in


async def test_a_wrong_code_is_tied_to_its_field_and_focused(client: Client) -> None:
    email = unique_email()
    client.navigate("/signup")
    await client.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    code = code_in(last_mail(email))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    client.navigate("/verify-email")
    events = await client.call(VerifyEmailState.submit_code, {"otp": wrong})
    assert redirects(events) == [] and focused(events) == ["ref_otp"]
    assert "not valid" in client.state(VerifyEmailState).field_errors["otp"]
    events = await client.call(VerifyEmailState.submit_code, {"otp": "  "})
    assert client.state(VerifyEmailState).field_errors == {
        "otp": "Enter the 6-digit code from the email."
    }
    assert redirects(await client.call(VerifyEmailState.submit_code, {"otp": code})) == [
        "/onboarding/profile"
    ]


async def test_send_again_replaces_the_code(client: Client) -> None:
    email = unique_email()
    client.navigate("/signup")
    await client.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    first = code_in(last_mail(email))
    client.navigate("/verify-email")
    await client.call(VerifyEmailState.send_again)
    assert "new email" in client.state(VerifyEmailState).notice
    assert len(mails_to(email, "verify_email")) == 2
    second = code_in(last_mail(email))
    if first != second:
        await client.call(VerifyEmailState.submit_code, {"otp": first})
        assert client.state(SessionState).signed_in is False
    events = await client.call(VerifyEmailState.submit_code, {"otp": second})
    assert redirects(events) == ["/onboarding/profile"]


async def test_signup_errors_keep_the_email_and_focus_the_field(client: Client) -> None:
    client.navigate("/signup")
    events = await client.call(
        SignupState.sign_up, {"email": "ada@example.com", "password": "short"}
    )
    form = client.state(SignupState)
    assert form.email == "ada@example.com"
    assert "at least 8" in form.field_errors["password"]
    assert focused(events) == ["ref_password"]
    assert client.state(SessionState).signed_in is False
    assert get_user_by_email("ada@example.com") is None


async def test_signup_refuses_a_common_password_and_one_built_from_the_email(
    client: Client,
) -> None:
    client.navigate("/signup")
    await client.call(SignupState.sign_up, {"email": "ada@example.com", "password": "password1"})
    assert client.state(SignupState).field_errors["password"] == password_policy.COMMON
    email = "grace.hopper@example.com"
    await client.call(SignupState.sign_up, {"email": email, "password": "gracehopper1906"})
    assert client.state(SignupState).field_errors["password"] == password_policy.PERSONAL
    assert get_user_by_email(email) is None


async def test_signup_of_a_registered_address_answers_the_same_and_tells_the_owner(
    client: Client,
) -> None:
    email = unique_email()
    await sign_up_and_confirm(client, email)
    owner = get_user_by_email(email)
    assert owner is not None
    stranger, newcomer = Client(), Client()
    stranger.navigate("/signup")
    taken = await stranger.call(
        SignupState.sign_up, {"email": email, "password": "another password"}
    )
    newcomer.navigate("/signup")
    fresh = unique_email()
    free = await newcomer.call(SignupState.sign_up, {"email": fresh, "password": PASSWORD})
    assert redirects(taken) == redirects(free) == ["/verify-email"]
    seen = [
        (tab.state(VerifyEmailState).waiting, tab.state(VerifyEmailState).form_error)
        for tab in (stranger, newcomer)
    ]
    assert seen[0] == seen[1] == (True, "")
    assert stranger.state(SessionState).token == ""
    assert get_user_by_email(email) == owner  # nothing about the account changed
    assert last_mail(email).kind == "signup_attempt"
    assert "/forgot-password" in last_mail(email).text
    # "Send again" sends its owner the same notice (no code that could confirm anything).
    stranger.navigate("/verify-email")
    await stranger.call(VerifyEmailState.send_again)
    assert [m.kind for m in mails_to(email)][:2] == ["signup_attempt", "signup_attempt"]


async def test_login_of_an_unconfirmed_account_mails_a_code_instead_of_a_session(
    client: Client,
) -> None:
    email = unique_email()
    Client().navigate("/signup")
    await Client().call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    client.navigate("/login")
    events = await client.call(LoginState.log_in, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/verify-email"]
    assert client.state(SessionState).token == ""
    assert client.state(VerifyEmailState).notice == "Confirm your email address to continue."
    assert len(mails_to(email, "verify_email")) == 2
    events = await client.call(VerifyEmailState.submit_code, {"otp": code_in(last_mail(email))})
    assert redirects(events) == ["/onboarding/profile"]
    # A wrong password for that account gets the usual answer, and no mail.
    other = Client()
    other.navigate("/login")
    await other.call(LoginState.log_in, {"email": email, "password": "not the password"})
    assert other.state(LoginState).form_error == LOGIN_FAILED


async def test_login_unknown_and_wrong_password_look_the_same(client: Client) -> None:
    email = unique_email()
    await sign_up_and_confirm(Client(), email)
    client.navigate("/login")
    await client.call(LoginState.log_in, {"email": email, "password": "wrong password"})
    wrong = client.state(LoginState).form_error
    await client.call(LoginState.log_in, {"email": unique_email(), "password": "wrong password"})
    unknown = client.state(LoginState).form_error
    assert wrong == unknown == LOGIN_FAILED
    assert client.state(SessionState).signed_in is False


async def test_login_honours_only_known_next(client: Client) -> None:
    email = unique_email()
    await sign_up_and_confirm(Client(), email)
    client.navigate("/login", {"next": "https://evil.example/"})
    events = await client.call(LoginState.log_in, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/onboarding/profile"]


async def test_login_resumes_at_the_reached_step(client: Client) -> None:
    email = unique_email()
    first = Client()
    await sign_up_and_confirm(first, email)
    await first.open("/onboarding/profile", OnboardingState.open_step)
    await first.call(OnboardingState.set_field, "display_name", "Alan")
    await first.call(OnboardingState.set_field, "role", "data")
    await first.call(OnboardingState.submit)
    # Another device logs in and lands on the step the first one reached, answers filled in.
    client.navigate("/login")
    events = await client.call(LoginState.log_in, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/onboarding/interests"]
    await client.open("/onboarding/profile", OnboardingState.open_step)
    assert client.state(OnboardingState).values["display_name"] == "Alan"
    assert client.state(OnboardingState).values["role"] == "data"


class HeldCheck:
    """Holds each password check (``accounts.log_in``) until released; counts them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.release = threading.Event()
        check = accounts.log_in

        def held(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            assert self.release.wait(10)
            return check(*args, **kwargs)

        monkeypatch.setattr(accounts, "log_in", held)

    async def started(self, tab: Client, form: dict[str, str]) -> asyncio.Task[list]:
        """A login submitted, once its check is under way (the form busy)."""
        task = asyncio.create_task(tab.call(LoginState.log_in, form))
        for _ in range(500):
            if self.calls:
                return task
            await asyncio.sleep(0.01)
        raise AssertionError("the password check never started")


async def test_login_runs_in_the_background_and_a_second_submit_does_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A background event: Reflex runs the body without the tab's state lock.
    assert LoginState.event_handlers["log_in"].is_background
    email = unique_email()
    await sign_up_and_confirm(Client(), email)
    check = HeldCheck(monkeypatch)
    client.navigate("/login")
    form = {"email": email, "password": PASSWORD}
    first = await check.started(client, form)
    assert client.state(LoginState).busy
    assert await client.call(LoginState.log_in, form) == []  # while one is under way
    assert await client.call(LoginState.log_in, {"email": email, "password": "wrong"}) == []
    check.release.set()
    assert redirects(await first) == ["/onboarding/profile"]
    assert check.calls == 1
    assert client.state(LoginState).busy is False
    assert client.state(SessionState).user_email == email


async def test_a_failed_background_login_is_not_busy_and_says_what_it_always_said(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = unique_email()
    await sign_up_and_confirm(Client(), email)
    check = HeldCheck(monkeypatch)
    client.navigate("/login")
    first = await check.started(client, {"email": email, "password": "wrong password"})
    assert client.state(LoginState).busy and client.state(LoginState).form_error == ""
    # A reset meanwhile (a link back to the page; a late on_load used to be one) neither
    # frees the form for a second submit nor wipes the error the sign-in then shows.
    await client.call(LoginState.reset_form)
    assert client.state(LoginState).busy
    assert await client.call(LoginState.log_in, {"email": email, "password": PASSWORD}) == []
    check.release.set()
    assert await first == []
    assert client.state(LoginState).busy is False
    assert client.state(LoginState).form_error == LOGIN_FAILED
    # The form works again at once: the right password signs in.
    events = await client.call(LoginState.log_in, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/onboarding/profile"] and check.calls == 2


async def test_the_links_between_login_and_signup_open_an_empty_form(client: Client) -> None:
    client.navigate("/login", {"error": "provider_error"})  # where a failed OAuth sign-in lands
    await client.call(LoginState.log_in, {"email": unique_email(), "password": "wrong password"})
    assert client.state(LoginState).form_error == LOGIN_FAILED
    await client.call(SignupState.reset_form)  # "Create an account", clicked on that page
    client.navigate("/signup")
    signup = client.state(SignupState)
    assert (signup.form_error, signup.field_errors, signup.busy) == ("", {}, False)
    await client.call(SignupState.sign_up, {"email": "ada@example", "password": "short"})
    assert signup.field_errors
    await client.call(LoginState.reset_form)  # "Log in"
    client.navigate("/login")
    login = client.state(LoginState)
    assert (login.form_error, login.field_errors, login.busy) == ("", {}, False)
    await client.call(SignupState.reset_form)  # and back to sign-up
    assert (signup.form_error, signup.field_errors, signup.strength) == ("", {}, -1)


async def test_login_field_errors_focus_the_first_empty_field(client: Client) -> None:
    client.navigate("/login")
    events = await client.call(LoginState.log_in, {"email": "", "password": ""})
    assert set(client.state(LoginState).field_errors) == {"email", "password"}
    assert focused(events) == ["ref_email"]


@pytest.mark.parametrize("form", [None, "email=a", ["a", "b"], {"email": 5, "password": None}, {}])
async def test_crafted_login_payloads_fail_cleanly(client: Client, form) -> None:
    client.navigate("/login")
    await client.call(LoginState.log_in, form)
    state = client.state(LoginState)
    assert state.field_errors or state.form_error
    assert client.state(SessionState).signed_in is False


@pytest.mark.parametrize("form", [None, "otp=1", ["1"], {"otp": 123456}, {"otp": "1" * 5000}, {}])
async def test_crafted_codes_fail_cleanly(client: Client, form) -> None:
    email = unique_email()
    client.navigate("/signup")
    await client.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    client.navigate("/verify-email")
    await client.call(VerifyEmailState.submit_code, form)
    screen = client.state(VerifyEmailState)
    assert screen.field_errors["otp"] and screen.busy is False
    assert client.state(SessionState).signed_in is False


async def test_a_code_needs_a_screen_waiting_for_it(client: Client) -> None:
    client.navigate("/verify-email")
    await client.call(VerifyEmailState.open_page)
    assert client.state(VerifyEmailState).waiting is False
    events = await client.call(VerifyEmailState.submit_code, {"otp": "123456"})
    assert redirects(events) == [] and client.state(VerifyEmailState).form_error
    await client.call(VerifyEmailState.send_again)
    assert client.state(VerifyEmailState).form_error


async def test_the_meter_says_what_the_policy_says_and_keeps_no_password(client: Client) -> None:
    client.navigate("/signup")
    await client.call(SignupState.set_email, "grace.hopper@example.com")
    for password in ("short", "password1", "gracehopper1906", "vivid otter quilt marmalade"):
        await client.call(SignupState.rate_password, password)
        form = client.state(SignupState)
        verdict = password_policy.strength(
            password, password_policy.context_words("grace.hopper@example.com")
        )
        assert (form.strength, form.strength_label, form.strength_hint) == tuple(verdict)
        assert (form.strength >= password_policy.MIN_SCORE) == (
            password_policy.password_problem(
                password, password_policy.context_words("grace.hopper@example.com")
            )
            is None
        )
        assert password not in repr(client.root.dict())
    await client.call(SignupState.rate_password, "")
    assert client.state(SignupState).strength == -1
    await client.call(SignupState.rate_password, ["not", "text"])
    assert client.state(SignupState).strength == -1


async def test_password_is_never_kept_in_state(client: Client) -> None:
    client.navigate("/login")
    await client.call(LoginState.log_in, {"email": "x@example.com", "password": "hunter2hunter2"})
    assert "hunter2hunter2" not in repr(client.root.dict())
    client.navigate("/signup")
    await client.call(
        SignupState.sign_up, {"email": unique_email(), "password": "vivid otter quilt"}
    )
    assert "vivid otter quilt" not in repr(client.root.dict())


async def test_field_errors_follow_what_is_typed_after_a_refusal(client: Client) -> None:
    client.navigate("/signup")
    await client.call(SignupState.sign_up, {"email": "ada@example", "password": "password1"})
    form = client.state(SignupState)
    assert set(form.field_errors) == {"email", "password"}
    # A late rating or email echo of what was submitted changes nothing.
    await client.call(SignupState.rate_password, "password1")
    await client.call(SignupState.set_email, "ada@example")
    assert form.field_errors["password"] == password_policy.COMMON and "email" in form.field_errors
    # Typing something else: the errors follow it.
    await client.call(SignupState.rate_password, "short")
    assert form.field_errors["password"] == password_policy.TOO_SHORT
    await client.call(SignupState.rate_password, "vivid otter quilt marmalade")
    await client.call(SignupState.set_email, "ada@example.com")
    assert form.field_errors == {}
