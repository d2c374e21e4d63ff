"""Shared fixtures. Tests never touch the developer's database or dev key.

The environment is pointed at throwaway locations before any app module is imported, so
``get_settings()`` inside the app sees them too.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SCRATCH = Path(tempfile.mkdtemp(prefix="onboard-tests-"))
os.environ["ONBOARD_DATABASE_URL"] = f"sqlite:///{_SCRATCH / 'default.db'}"
os.environ["ONBOARD_DEV_KEY_FILE"] = str(_SCRATCH / "dev-key")
os.environ["ONBOARD_MAIL_DIR"] = str(_SCRATCH / "mail")
os.environ.pop("ONBOARD_REDIS_URL", None)
os.environ.pop("ONBOARD_ENV", None)

from onboard_app.services.db import dispose_engine, upgrade_to_head  # noqa: E402
from onboard_app.settings import Settings, SigningKey, override_settings  # noqa: E402

KEY = SigningKey("test-1", secrets.token_bytes(32))


def make_settings(**changes: object) -> Settings:
    """Settings with a fixed test key; override any field."""
    base: dict[str, object] = {
        "signing_keys": (KEY,),
        "database_url": os.environ["ONBOARD_DATABASE_URL"],
        "mail_dir": _SCRATCH / "mail",
    }
    base.update(changes)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def settings() -> Iterator[Settings]:
    """Process-wide settings with a test key, restored afterwards."""
    value = make_settings()
    override_settings(value)
    yield value
    override_settings(None)


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite database at the newest migration."""
    url = f"sqlite:///{tmp_path / 'onboard.db'}"
    upgrade_to_head(url)
    yield url
    dispose_engine(url)


@pytest.fixture
def app_db(db_url: str, settings: Settings) -> Iterator[Settings]:
    """Settings whose database is a fresh migrated SQLite file (services use the default URL)."""
    value = make_settings(database_url=db_url)
    override_settings(value)
    yield value
    override_settings(None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests that use the e2e browser last.

    Playwright's sync API keeps an asyncio loop running in the main thread from the first
    browser test to the end of the session, so every ``async def`` test collected after
    it (tests/security, tests/state) would fail with "Runner.run() cannot be called from a
    running event loop".
    """
    items.sort(key=lambda item: "playwright_instance" in getattr(item, "fixturenames", ()))
