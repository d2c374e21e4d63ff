"""Fixtures of the adversarial suite: fresh database, browser tabs, people at each step.

Every in-process test runs on its own migrated SQLite file (``app_db`` from
``tests/conftest.py``) with Reflex's real state tree (``tests/state/harness.py``). Client
addresses come from the IPv6 documentation range, one per tab, so the process-wide login
throttle of one test never blocks another.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from onboard_app.services.db import get_engine
from onboard_app.services.users import get_user_by_email
from onboard_app.settings import Settings
from onboard_app.state.explore import ExploreState
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState
from tests.state.harness import Client, redirects
from tests.state.mail import sign_up_and_confirm
from tests.state.wizard import (  # noqa: F401 (re-exported for the security tests)
    fill_interests,
    fill_preferences,
    fill_profile,
    reach_review,
)

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]


def unique_ip() -> str:
    """A client address no other test uses (IPv6 documentation prefix)."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def unique_email(prefix: str = "sec") -> str:
    """A fresh address."""
    return f"{prefix}-{secrets.token_hex(4)}@example.com"


#: Ways to spoil a mailed link's token, by name: each must be refused and change nothing.
TOKEN_EDITS: dict[str, Callable[[str], str]] = {
    "one-char": lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    "truncated": lambda t: t[:-4],
    "extended": lambda t: t + "x",
    "upper": lambda t: t.upper(),
    "non-ascii": lambda t: t[:10] + "é" + t[11:],
    "huge": lambda t: "x" * 5000,
    "twice": lambda t: t + "&token=" + t,
    "empty": lambda t: "",
}
#: Runs a test once per :data:`TOKEN_EDITS` entry, as its ``edit`` argument.
tampered_token = pytest.mark.parametrize("edit", list(TOKEN_EDITS.values()), ids=list(TOKEN_EDITS))


def new_tab() -> Client:
    """A tab of a new browser (its own state tree and address)."""
    return Client(ip=unique_ip())


@dataclass
class Person:
    """A signed-up user and the browser tab they use."""

    email: str
    tab: Client

    @property
    def token(self) -> str:
        """The token the tab holds now."""
        return self.tab.state(SessionState).token

    @property
    def id(self) -> int:
        """The user's primary key."""
        user = get_user_by_email(self.email)
        assert user is not None
        return int(user.id)  # type: ignore[arg-type]


async def sign_up(tab: Client | None = None, email: str | None = None) -> Person:
    """Sign up through the real handlers: the sign-up form, then the mailed code."""
    tab = tab or new_tab()
    email = email or unique_email()
    events = await sign_up_and_confirm(tab, email, PASSWORD)
    assert redirects(events) == ["/onboarding/profile"]
    return Person(email, tab)


async def completed_person() -> Person:
    """A user who finished onboarding, on the explore page Finish sent them to."""
    person = await sign_up()
    await reach_review(person.tab)
    assert redirects(await person.tab.call(OnboardingState.finish_onboarding)) == ["/explore"]
    assert await person.tab.open("/explore", ExploreState.load) == []
    return person


def snapshot(settings: Settings) -> list[list[tuple[Any, ...]]]:
    """Every row of the user tables (to compare before/after an attack).

    Tests index it (``[2]`` is the onboarding events): a new table goes at the end.
    """
    with get_engine(settings.database_url).connect() as connection:
        return [
            [tuple(row) for row in connection.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1"))]
            for t in (
                "users",
                "onboarding_answers",
                "onboarding_events",
                "onboarding_progress",
                "onboarding_counts",
                "device_sessions",
                "passkeys",
                "two_factor",
                "two_factor_recovery_codes",
            )
        ]


def rows_of(settings: Settings, user_id: int) -> list[list[tuple[Any, ...]]]:
    """One user's rows in the user tables."""
    with get_engine(settings.database_url).connect() as connection:
        return [
            [
                tuple(row)
                for row in connection.execute(
                    sa.text(f"SELECT * FROM {table} WHERE {column} = :id"), {"id": user_id}
                )
            ]
            for table, column in (("users", "id"), ("onboarding_answers", "user_id"))
        ]


@pytest.fixture
def tab(app_db: Settings) -> Client:
    """A tab of a new browser, against a fresh database."""
    return new_tab()


def private_web_dir(tmp: Path) -> dict[str, str]:
    """Environment giving a started app its own ``.web`` (concurrent runs share the repo's).

    ``reflex run --env prod`` rewrites ``.web`` (``env.json`` holds the port): two apps
    started from one checkout at once serve each other's bundles. A copy of the compiled
    project with the installed ``node_modules`` linked in keeps this module's app apart.

    Args:
        tmp: A temporary directory.

    Returns:
        ``{"REFLEX_WEB_WORKDIR": ...}``, or nothing when no installed ``.web`` exists yet.
    """
    source = ROOT / ".web"
    if not (source / "node_modules").is_dir():
        return {}
    target = tmp / "web"
    target.mkdir()
    for entry in source.iterdir():
        if entry.name in ("node_modules", "build", ".react-router"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, target / entry.name)
    (target / "node_modules").symlink_to(source / "node_modules")
    return {"REFLEX_WEB_WORKDIR": str(target)}


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary directory for one module."""
    yield tmp_path_factory.mktemp("security")
