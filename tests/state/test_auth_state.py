"""Login and signup handlers, with well-formed and crafted input."""

from __future__ import annotations

import pytest

from onboard_app.services.accounts import LOGIN_FAILED
from onboard_app.services.users import get_user_by_email
from onboard_app.state.auth import LoginState, SignupState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.state.conftest import PASSWORD, unique_email
from tests.state.harness import Client, redirects

pytestmark = pytest.mark.asyncio


async def test_signup_starts_a_session_at_the_first_step(client: Client) -> None:
    email = unique_email()
    client.navigate("/signup")
    events = await client.call(
        SignupState.sign_up, {"email": f"  {email.upper()} ", "password": PASSWORD}
    )
    assert redirects(events) == ["/onboarding/profile"]
    assert get_user_by_email(email) is not None
    assert client.state(SessionState).signed_in


async def test_signup_errors_keep_the_email(client: Client) -> None:
    client.navigate("/signup")
    await client.call(SignupState.sign_up, {"email": "ada@example.com", "password": "short"})
    form = client.state(SignupState)
    assert form.email == "ada@example.com"
    assert "at least 8" in form.field_errors["password"]
    assert client.state(SessionState).signed_in is False


async def test_duplicate_signup_is_refused(client: Client) -> None:
    email = unique_email()
    client.navigate("/signup")
    await client.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    other = Client()
    other.navigate("/signup")
    events = await other.call(SignupState.sign_up, {"email": email, "password": "another password"})
    assert redirects(events) == []
    assert "already exists" in other.state(SignupState).field_errors["email"]


async def test_login_unknown_and_wrong_password_look_the_same(client: Client) -> None:
    email = unique_email()
    Client().navigate("/signup")
    await Client().call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    client.navigate("/login")
    await client.call(LoginState.log_in, {"email": email, "password": "wrong password"})
    wrong = client.state(LoginState).form_error
    await client.call(LoginState.log_in, {"email": unique_email(), "password": "wrong password"})
    unknown = client.state(LoginState).form_error
    assert wrong == unknown == LOGIN_FAILED
    assert client.state(SessionState).signed_in is False


async def test_login_honours_only_known_next(client: Client) -> None:
    email = unique_email()
    await Client().call(SignupState.sign_up, {"email": email, "password": PASSWORD})
    client.navigate("/login", {"next": "https://evil.example/"})
    events = await client.call(LoginState.log_in, {"email": email, "password": PASSWORD})
    assert redirects(events) == ["/onboarding/profile"]


async def test_login_resumes_at_the_reached_step(client: Client) -> None:
    email = unique_email()
    first = Client()
    first.navigate("/signup")
    await first.call(SignupState.sign_up, {"email": email, "password": PASSWORD})
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


@pytest.mark.parametrize("form", [None, "email=a", ["a", "b"], {"email": 5, "password": None}, {}])
async def test_crafted_login_payloads_fail_cleanly(client: Client, form) -> None:
    client.navigate("/login")
    await client.call(LoginState.log_in, form)
    state = client.state(LoginState)
    assert state.field_errors or state.form_error
    assert client.state(SessionState).signed_in is False


async def test_password_is_never_kept_in_state(client: Client) -> None:
    client.navigate("/login")
    await client.call(LoginState.log_in, {"email": "x@example.com", "password": "hunter2hunter2"})
    assert "hunter2hunter2" not in repr(client.root.dict())
