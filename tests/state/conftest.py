"""Fixtures for in-process state tests: a fresh database and a fresh browser tab."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable, Iterator

import pytest

from onboard_app.settings import Settings, override_settings
from tests.fakes.github import GitHubFake
from tests.state.harness import Client, redirects
from tests.state.mail import sign_up_and_confirm
from tests.unit.test_oauth import GITHUB_CALLBACK, github_settings

PASSWORD = "correct horse battery staple"


@pytest.fixture
def client(app_db: Settings) -> Client:
    """One tab of a new browser, against a fresh database."""
    return Client(ip=f"198.51.100.{secrets.randbelow(250) + 1}")


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(4)}@example.com"


@pytest.fixture
def signed_up() -> Callable[[Client], Awaitable[str]]:
    """Sign a tab up with a new local account (confirmed with the mailed code); its email."""

    async def run(tab: Client) -> str:
        email = unique_email()
        events = await sign_up_and_confirm(tab, email, PASSWORD)
        assert redirects(events) == ["/onboarding/profile"]
        return email

    return run


@pytest.fixture
def github(app_db: Settings) -> Iterator[GitHubFake]:
    """A GitHub stand-in over real HTTP, configured as the app's GitHub sign-in."""
    with GitHubFake(redirect_uri=GITHUB_CALLBACK) as fake:
        override_settings(dataclasses.replace(app_db, github=github_settings(fake)))
        yield fake
    override_settings(app_db)
