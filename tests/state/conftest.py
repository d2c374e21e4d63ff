"""Fixtures for in-process state tests: a fresh database and a fresh browser tab."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import pytest

from onboard_app.settings import Settings
from tests.state.harness import Client, redirects
from tests.state.mail import sign_up_and_confirm

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
