"""The insights page's state: admins get the insights; nobody else gets anything, whatever path.

People are made through the repository (accounts, steps, Finish) and their tab holds a token
minted by the server for them, as after a login; every call goes through the access gate
(``tests/state/harness.py``) with the router path the test chooses.
"""

from __future__ import annotations

import base64
import csv
import inspect
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from reflex_base.event import EventSpec

import onboard_app.state.admin  # noqa: F401 (registers the state)
from onboard_app import routes
from onboard_app.models import User
from onboard_app.services import access
from onboard_app.services.db import get_engine, session_scope
from onboard_app.services.onboarding import COMPLETED, REVIEW
from onboard_app.services.sessions import start_session
from onboard_app.services.users import (
    complete_onboarding,
    create_external_user,
    create_local_user,
    get_user,
    record_step_opened,
    save_step,
    set_role,
)
from onboard_app.settings import Settings, override_settings
from onboard_app.state.admin import AdminState
from onboard_app.state.session import SessionState
from tests.conftest import make_settings
from tests.security.test_access_rules import PATHS
from tests.state.harness import Client, redirects, toasts
from tests.unit.flow_steps import GOOD

pytestmark = pytest.mark.asyncio

HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"
ADMIN_EMAIL = "admin@example.com"


def person(email: str, *, finish: bool = True, verified: bool = True, upto: str = REVIEW) -> int:
    """A password account taken through the wizard (to ``upto``, then Finish if asked)."""
    user = create_local_user(email, HASH)
    assert user.id is not None
    if verified:
        with session_scope() as session:
            row = session.get(User, user.id)
            assert row is not None
            row.email_verified_at = datetime.now(UTC)
    for step, answers in GOOD.items():
        record_step_opened(user.id, step)
        if step == upto:
            break  # opened, never saved
        save_step(user.id, step, answers)
    if finish and upto == REVIEW:
        record_step_opened(user.id, REVIEW)
        assert complete_onboarding(user.id).transitioned
    return user.id


def tab_of(user_id: int) -> Client:
    """A browser tab holding the session the server started for this user."""
    tab = Client()
    user = get_user(user_id)
    assert user is not None
    tab.state(SessionState).token = start_session(user)
    return tab


def claims(tab: Client) -> dict[str, Any]:
    payload = tab.state(SessionState).token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def visible(tab: Client) -> dict[str, Any]:
    state = tab.state(AdminState)
    return {name: getattr(state, name) for name in AdminState.base_vars}


def snapshot(settings: Settings) -> list[list[tuple[Any, ...]]]:
    tables = ("users", "onboarding_answers", "onboarding_events", "onboarding_progress")
    with get_engine(settings.database_url).connect() as connection:
        return [
            [tuple(r) for r in connection.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1"))]
            for t in (*tables, "onboarding_counts")
        ]


def arguments(name: str) -> tuple[Any, ...]:
    params = [p for p in inspect.signature(AdminState.event_handlers[name].fn).parameters]
    return ("2026-01-01",) * (len(params) - 1)


def download_of(events: list[Any]) -> tuple[str, str]:
    """The file name and text of the download among the events."""
    (spec,) = [e for e in events if isinstance(e, EventSpec) and "_download" in str(e.handler)]
    values = {str(k): getattr(v, "_var_value", v) for k, v in spec.args}
    url = str(values["url"]).strip('"')
    assert url.startswith("data:text/csv;base64,")
    return str(values["filename"]).strip('"'), base64.b64decode(url.split(",", 1)[1]).decode()


@pytest.fixture
def admins(app_db: Settings) -> Settings:
    """Settings in which ADMIN_EMAIL is listed in ONBOARD_ADMIN_EMAILS."""
    value = make_settings(database_url=app_db.database_url, admin_emails=frozenset({ADMIN_EMAIL}))
    override_settings(value)
    return value


async def test_an_admin_gets_the_funnel_chart_and_stuck_list(admins: Settings) -> None:
    person("done@example.com")
    person("stuck@example.com", upto="interests")
    admin = tab_of(person(ADMIN_EMAIL))
    admin.navigate(routes.ADMIN_ONBOARDING)
    assert redirects(await admin.call(AdminState.load)) == []
    state = admin.state(AdminState)
    assert state.loaded and not state.loading
    funnel = {row.step: (row.reached, row.finished) for row in state.funnel}
    assert funnel == {"profile": (3, 3), "interests": (3, 2), "preferences": (2, 2), REVIEW: (2, 2)}
    assert [p["completions"] for p in state.completions] == [2]
    assert state.chart_summary == f"2 completions on {datetime.now(UTC).date().isoformat()}."
    assert state.stuck_total == 0  # nobody for more than 7 days
    await admin.call(AdminState.set_stuck_days, "0")
    assert [(r.email, r.step) for r in state.stuck] == [("stuck@example.com", "Your interests")]
    assert claims(admin)["role"] == "admin"


async def test_the_filters_narrow_every_figure(admins: Settings) -> None:
    person("a@example.com")
    github = create_external_user(email=None, display_name="", avatar_url=None, github_id=9)
    assert github.id is not None
    record_step_opened(github.id, "profile")
    admin = tab_of(person(ADMIN_EMAIL))
    admin.navigate(routes.ADMIN_ONBOARDING)
    await admin.call(AdminState.load)
    await admin.call(AdminState.set_method, "github")
    state = admin.state(AdminState)
    assert (state.funnel[0].step, state.funnel[0].reached, state.funnel[0].finished) == (
        "profile",
        1,
        0,
    )
    assert state.completions == []
    await admin.call(AdminState.set_method, "all")
    today = datetime.now(UTC).date()
    await admin.call(AdminState.set_signed_up_to, (today.replace(year=today.year - 1)).isoformat())
    assert all(r.reached == 0 for r in state.funnel)
    await admin.call(AdminState.clear_filters)
    assert state.funnel[0].reached == 3 and state.signed_up_to == ""


async def test_exports_are_csv_downloads_of_what_the_filters_select(admins: Settings) -> None:
    person("stuck@example.com", upto="preferences")
    admin = tab_of(person(ADMIN_EMAIL))
    admin.navigate(routes.ADMIN_ONBOARDING)
    await admin.call(AdminState.load)
    name, text = download_of(await admin.call(AdminState.export_funnel))
    assert name.startswith("onboarding-funnel-") and name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["step", "title", "reached", "finished"]
    assert [r[2:4] for r in rows[1:]] == [["2", "2"], ["2", "2"], ["2", "1"], ["1", "1"]]
    await admin.call(AdminState.set_stuck_days, "0")
    name, text = download_of(await admin.call(AdminState.export_stuck))
    assert name.startswith("onboarding-stuck-")
    rows = list(csv.reader(io.StringIO(text)))
    assert [(r[1], r[3]) for r in rows[1:]] == [("stuck@example.com", "preferences")]


async def test_sorting_and_paging_the_stuck_list(admins: Settings) -> None:
    for i in range(25):
        person(f"s{i:02d}@example.com", upto=("profile", "interests", "preferences")[i % 3])
    admin = tab_of(person(ADMIN_EMAIL))
    admin.navigate(routes.ADMIN_ONBOARDING)
    await admin.call(AdminState.load)
    await admin.call(AdminState.set_stuck_days, "0")
    state = admin.state(AdminState)
    assert (state.stuck_total, len(state.stuck), state.range_text) == (25, 20, "1–20 of 25")
    await admin.call(AdminState.next_page)
    assert (state.page, len(state.stuck), state.range_text) == (2, 5, "21–25 of 25")
    await admin.call(AdminState.next_page)
    assert state.page == 2  # no page 3
    await admin.call(AdminState.sort_stuck, "step")
    assert (state.sort, state.descending, state.page) == ("step", False, 1)
    titles = [r.step for r in state.stuck]
    assert titles[:9] == ["Your profile"] * 9 and titles[9] == "Your interests"
    await admin.call(AdminState.sort_stuck, "step")
    assert state.descending and state.stuck[0].step == "Preferences"
    await admin.call(AdminState.previous_page)
    assert state.page == 1


@pytest.mark.parametrize(
    ("handler", "args"),
    [
        ("set_method", ("'; DROP TABLE users; --",)),
        ("set_method", (None,)),
        ("set_version", ("99",)),
        ("set_version", (2,)),
        ("set_version", ("1 OR 1=1",)),
        ("set_stuck_days", ("-1",)),
        ("set_stuck_days", ("abc",)),
        ("set_stuck_days", (10**9,)),
        ("set_stuck_days", ("\u0663",)),  # an Arabic-Indic digit
        ("set_stuck_days", ("9" * 5000,)),
        ("sort_stuck", ("email",)),
        ("sort_stuck", (["days"],)),
        ("set_signed_up_from", ("2026-13-01",)),
        ("set_signed_up_from", ("1999-12-31",)),
        ("set_signed_up_from", ({"year": 2026},)),
        ("set_signed_up_to", ("2026-01-01\x00",)),
        ("set_signed_up_to", ("\ud800",)),
    ],
)
async def test_crafted_arguments_change_no_filter(
    admins: Settings, handler: str, args: tuple[Any, ...]
) -> None:
    admin = tab_of(person(ADMIN_EMAIL))
    admin.navigate(routes.ADMIN_ONBOARDING)
    await admin.call(AdminState.load)
    before = {
        k: v
        for k, v in visible(admin).items()
        if k in ("signed_up_from", "signed_up_to", "method", "version", "stuck_days", "sort")
    }
    events = await admin.call(getattr(AdminState, handler), *args)
    assert redirects(events) == [] and toasts(events) == []
    after = {k: v for k, v in visible(admin).items() if k in before}
    assert after == before


async def test_an_inverted_date_range_is_a_message_not_a_query(admins: Settings) -> None:
    admin = tab_of(person(ADMIN_EMAIL))
    admin.navigate(routes.ADMIN_ONBOARDING)
    await admin.call(AdminState.load)
    await admin.call(AdminState.set_signed_up_from, "2026-06-02")
    await admin.call(AdminState.set_signed_up_to, "2026-06-01")
    assert admin.state(AdminState).filter_error == "The first sign-up day is after the last one."
    await admin.call(AdminState.set_signed_up_to, "")
    assert admin.state(AdminState).filter_error == ""


def expected(reached: str | None, path: str, kind: str) -> set[str]:
    """Where the gate sends a refused caller (an unconfirmed address may go to confirm it)."""
    targets = {access.refused_target(reached, path)}
    if kind == "unverified listed":
        targets.add(access.refused_target(reached, path, verified=False))
    return targets


async def who(kind: str) -> Client:
    """A tab of someone who is not an admin, or not an admin yet."""
    if kind == "anonymous":
        return Client()
    if kind == "onboarding admin":  # listed, verified, onboarding not finished
        return tab_of(person(ADMIN_EMAIL, finish=False, upto="interests"))
    if kind == "unverified listed":  # listed, finished, address never confirmed
        return tab_of(person(ADMIN_EMAIL, verified=False))
    return tab_of(person("member@example.com"))


@pytest.mark.parametrize("kind", ["anonymous", "member", "onboarding admin", "unverified listed"])
async def test_no_one_else_gets_anything_whatever_page_it_claims(
    admins: Settings, kind: str
) -> None:
    person("someone@example.com", upto="interests")
    tab = await who(kind)
    session = tab.state(SessionState)
    reached = None
    if session.token:
        user = get_user(int(claims(tab)["sub"]))
        assert user is not None
        reached = user.onboarding_step
    defaults = visible(Client())
    for name in AdminState.event_handlers:
        for path in (*PATHS, routes.ADMIN_ONBOARDING, "/admin/onboarding/../explore"):
            tab.navigate(path)
            before = snapshot(admins)
            events = await tab.call(getattr(AdminState, name), *arguments(name))
            where = f"{name} as {kind} on {path!r}"
            assert len(events) == len(redirects(events)) + len(toasts(events)), where
            if name == "setvar":  # Reflex's generic setter: declared by nobody, never runs
                assert events == [], where
            else:
                assert redirects(events)[0] in expected(reached, path, kind), where
            assert visible(tab) == defaults, where
            assert snapshot(admins) == before, where
            if tab.state(SessionState).token:
                # An admin still in the wizard holds the role, and is refused all the same.
                assert claims(tab).get("role") == ("admin" if kind == "onboarding admin" else None)


async def test_a_revoked_admin_is_refused_at_the_next_event(admins: Settings) -> None:
    person("x@example.com")
    granted = person("granted@example.com")
    set_role("granted@example.com", "admin")
    admin = tab_of(granted)
    admin.navigate(routes.ADMIN_ONBOARDING)
    assert redirects(await admin.call(AdminState.load)) == []
    assert claims(admin)["role"] == "admin"
    set_role("granted@example.com", "member")
    events = await admin.call(AdminState.export_stuck)
    assert redirects(events) == [routes.EXPLORE]
    assert "role" not in claims(admin)  # re-minted from the row on the way in


async def test_a_grant_takes_effect_at_the_next_event_with_a_re_minted_token(
    admins: Settings,
) -> None:
    member = tab_of(person("later@example.com"))
    member.navigate(routes.ADMIN_ONBOARDING)
    assert redirects(await member.call(AdminState.load)) == [routes.EXPLORE]
    assert "role" not in claims(member)
    set_role("later@example.com", "admin")
    assert redirects(await member.call(AdminState.load)) == []
    assert claims(member)["role"] == "admin"
    assert member.state(AdminState).funnel


async def test_a_listed_provider_account_with_an_address_is_an_admin(admins: Settings) -> None:
    github = create_external_user(
        email=ADMIN_EMAIL, display_name="Octo", avatar_url=None, github_id=77
    )
    assert github.id is not None
    for step, answers in GOOD.items():
        save_step(github.id, step, answers)
    complete_onboarding(github.id)
    tab = tab_of(github.id)
    tab.navigate(routes.ADMIN_ONBOARDING)
    assert redirects(await tab.call(AdminState.load)) == []
    user = get_user(github.id)
    assert user is not None and user.onboarding_step == COMPLETED
