"""Wizard handlers called in-process, including the calls a modified client could make."""

from __future__ import annotations

import jwt
import pytest

from onboard_app.models import User
from onboard_app.services.db import session_scope
from onboard_app.services.tokens import mint_session_token
from onboard_app.services.users import get_user_by_email, load_answers
from onboard_app.settings import Settings, SigningKey
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.state.harness import Client, redirects, toasts
from tests.state.wizard import fill_profile, reach_review

pytestmark = pytest.mark.asyncio


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def test_each_step_is_saved_and_the_token_follows(client: Client, signed_up) -> None:
    email = await signed_up(client)
    session = client.state(SessionState)
    first = claims_of(session.token)
    await reach_review(client)
    user = get_user_by_email(email)
    assert user is not None and user.onboarding_step == "review"
    assert user.display_name == "Grace Hopper"
    answers = load_answers(user.id)
    assert answers.get("interests") == ["python", "rust", "security"]
    assert (answers.get("experience_level"), answers.get("email_digest"), answers.get("theme")) == (
        "advanced",
        True,
        "dark",
    )
    now = claims_of(session.token)
    assert now["onb"] == "review" and now["sub"] == first["sub"]
    assert now["auth_time"] == first["auth_time"]


async def test_finish_remints_from_the_database(client: Client, signed_up) -> None:
    email = await signed_up(client)
    await reach_review(client)
    session = client.state(SessionState)
    before = session.token
    await client.open("/onboarding/review", OnboardingState.open_step)
    events = await client.call(OnboardingState.finish_onboarding)
    assert redirects(events) == ["/explore"]
    after = claims_of(session.token)
    assert session.token != before
    assert after["onb"] == "completed"
    assert after["sub"] == claims_of(before)["sub"]
    assert after["auth_time"] == claims_of(before)["auth_time"]
    assert after["jti"] != claims_of(before)["jti"]
    user = get_user_by_email(email)
    assert user.onboarding_step == "completed" and user.onboarding_completed_at is not None
    # The guard now lets the user into explore and out of the wizard.
    client.navigate("/explore")
    assert await client.call(SessionState.guard) == []
    assert redirects(await client.open("/onboarding/profile", OnboardingState.open_step)) == [
        "/explore"
    ]


async def test_double_finish_gives_one_transition(client: Client, signed_up) -> None:
    email = await signed_up(client)
    await reach_review(client)
    await client.call(OnboardingState.finish_onboarding)
    first_done = get_user_by_email(email).onboarding_completed_at
    events = await client.call(OnboardingState.finish_onboarding)
    assert redirects(events) == ["/explore"]
    assert get_user_by_email(email).onboarding_completed_at == first_done
    assert claims_of(client.state(SessionState).token)["onb"] == "completed"


async def test_finish_with_missing_steps_is_refused(client: Client, signed_up) -> None:
    email = await signed_up(client)
    await fill_profile(client)
    events = await client.call(OnboardingState.finish_onboarding)
    assert redirects(events) == ["/onboarding/interests"]
    assert any("complete" in t for t in toasts(events))
    assert get_user_by_email(email).onboarding_step == "interests"


async def test_out_of_order_step_is_refused_and_nothing_is_written(
    client: Client, signed_up
) -> None:
    email = await signed_up(client)
    await client.open("/onboarding/profile", OnboardingState.open_step)
    # A crafted open of a later step, then its answers and a submit, with valid-looking data.
    events = await client.open("/onboarding/interests", OnboardingState.open_step)
    assert redirects(events) == ["/onboarding/profile"]
    for topic in ("python", "go", "rust"):
        await client.call(OnboardingState.toggle_choice, "interests", topic)
    events = await client.call(OnboardingState.submit)
    assert redirects(events) == ["/onboarding/profile"]
    user = get_user_by_email(email)
    assert user.onboarding_step == "profile"
    assert load_answers(user.id).get("interests") == []
    # Opening a later step by URL goes back to the reached one.
    assert redirects(await client.open("/onboarding/preferences", OnboardingState.open_step)) == [
        "/onboarding/profile"
    ]


async def test_steps_after_completion_change_nothing(client: Client, signed_up) -> None:
    email = await signed_up(client)
    await reach_review(client)
    await client.call(OnboardingState.finish_onboarding)
    await client.call(OnboardingState.set_field, "display_name", "Someone Else")
    events = await client.call(OnboardingState.submit)
    assert redirects(events) == ["/explore"]
    assert get_user_by_email(email).display_name == "Grace Hopper"


@pytest.mark.parametrize(
    ("handler", "name", "value"),
    [
        ("set_field", "display_name", 12345),
        ("set_field", "display_name", {"name": "x"}),
        ("set_field", "display_name", None),
        ("set_field", "role", "admin"),
        ("set_field", "role", ["developer"]),
        ("set_field", "bio", b"bytes"),
        ("toggle_choice", "interests", "python"),  # a field of another step
        ("toggle_choice", "display_name", "python"),  # not a multiple choice
        ("set_field", "experience_level", "advanced"),  # another step's field
        ("set_field", "theme", "dark"),  # another step's field
        ("set_field", "onboarding_step", "completed"),  # not a field at all
        ("set_field", ["display_name"], "x"),
        ("set_field", None, "x"),
    ],
)
async def test_wrong_typed_or_foreign_arguments_are_ignored(
    client: Client, signed_up, handler: str, name, value
) -> None:
    await signed_up(client)
    await client.open("/onboarding/profile", OnboardingState.open_step)
    form = client.state(OnboardingState)
    before = (dict(form.values), {k: list(v) for k, v in form.selections.items()})
    await client.call(getattr(OnboardingState, handler), name, value)
    assert (dict(form.values), {k: list(v) for k, v in form.selections.items()}) == before


async def test_huge_display_name_is_refused_with_a_message(client: Client, signed_up) -> None:
    email = await signed_up(client)
    await client.open("/onboarding/profile", OnboardingState.open_step)
    await client.call(OnboardingState.set_field, "display_name", "x" * 100_000)
    await client.call(OnboardingState.set_field, "role", "developer")
    events = await client.call(OnboardingState.submit)
    assert redirects(events) == []
    assert "under 80" in client.state(OnboardingState).errors["display_name"]
    assert get_user_by_email(email).onboarding_step == "profile"


async def test_sql_metacharacters_are_stored_literally(client: Client, signed_up) -> None:
    email = await signed_up(client)
    name = "Robert'); DROP TABLE users;--"
    await fill_profile(client, name)
    assert get_user_by_email(email).display_name == name


async def test_forged_token_in_storage_is_rejected(
    client: Client, signed_up, app_db: Settings
) -> None:
    email = await signed_up(client)
    user = get_user_by_email(email)
    forged_settings = Settings(
        signing_keys=(SigningKey(app_db.current_key.kid, b"f" * 32),),
        database_url=app_db.database_url,
    )
    await client.open("/onboarding/profile", OnboardingState.open_step)
    client.state(SessionState).token = mint_session_token(user, forged_settings)
    await client.call(OnboardingState.set_field, "display_name", "Mallory")
    await client.call(OnboardingState.set_field, "role", "developer")
    events = await client.call(OnboardingState.submit)
    assert redirects(events) == ["/login?next=/onboarding/profile"]
    assert client.state(SessionState).signed_in is False
    assert client.state(SessionState).token == ""
    assert get_user_by_email(email).display_name == ""


async def test_edited_claims_cannot_skip_onboarding(client: Client, signed_up) -> None:
    await signed_up(client)
    session = client.state(SessionState)
    header, payload, signature = session.token.split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["onb"] = "completed"
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    session.token = f"{header}.{edited}.{signature}"
    client.navigate("/explore")
    assert redirects(await client.call(SessionState.guard)) == ["/login?next=/explore"]


async def test_stale_onboarding_token_is_healed_not_looped(
    client: Client, signed_up, app_db: Settings
) -> None:
    email = await signed_up(client)
    session = client.state(SessionState)
    stale = session.token
    await reach_review(client)
    await client.call(OnboardingState.finish_onboarding)
    # Another tab still holds the token minted at signup (it says "profile").
    other = Client()
    other.state(SessionState).token = stale
    other.navigate("/explore")
    assert await other.call(SessionState.guard) == []
    healed = claims_of(other.state(SessionState).token)
    assert healed["onb"] == "completed"
    user = get_user_by_email(email)
    with session_scope() as db:
        assert db.get(User, user.id).onboarding_step == "completed"
