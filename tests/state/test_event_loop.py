"""Nothing blocks the event loop: a slow query in one tab does not hold up another tab."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from onboard_app.services.catalogue_seed import seed_catalogue
from onboard_app.services.db import get_engine
from onboard_app.settings import Settings
from onboard_app.state.explore import ExploreState
from onboard_app.state.onboarding import OnboardingState
from tests.security.conftest import completed_person, sign_up
from tests.state.harness import redirects

SLOW_SECONDS = 0.8


@pytest.fixture
def slow_answer_writes(app_db: Settings) -> Iterator[None]:
    """Every write of the answers table takes SLOW_SECONDS (a database under load)."""
    engine = get_engine(app_db.database_url)

    def delay(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")) and (
            "onboarding_answers" in statement
        ):
            time.sleep(SLOW_SECONDS)

    sa.event.listen(engine, "before_cursor_execute", delay)
    yield
    sa.event.remove(engine, "before_cursor_execute", delay)


async def test_a_slow_save_in_one_tab_does_not_delay_another_tab(
    app_db: Settings, slow_answer_writes: None
) -> None:
    seed_catalogue(app_db.database_url)
    reader = (await completed_person()).tab
    writer = (await sign_up()).tab
    writer.navigate("/onboarding/profile")
    await writer.call(OnboardingState.open_step)
    await writer.call(OnboardingState.set_field, "display_name", "Slow Writer")
    await writer.call(OnboardingState.set_field, "role", "developer")
    reader.navigate("/explore")
    finished: list[str] = []

    async def save() -> None:
        events = await writer.call(OnboardingState.submit)
        assert redirects(events) == ["/onboarding/interests"]
        finished.append("writer")

    async def browse() -> None:
        await asyncio.sleep(0.1)  # the writer's slow query is under way
        assert await reader.call(ExploreState.search, "python") == []
        assert reader.state(ExploreState).cards
        finished.append("reader")

    started = time.perf_counter()
    await asyncio.gather(save(), browse())
    assert finished == ["reader", "writer"]
    assert time.perf_counter() - started >= SLOW_SECONDS  # the writer really was slow
