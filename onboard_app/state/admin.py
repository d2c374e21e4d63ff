"""``/admin/onboarding``: the onboarding insights, for admins only.

Every handler requires :data:`~onboard_app.services.access.ADMIN` (signed in, onboarding
finished, and the admin role read from the database at this event): the gate refuses
anyone else before the body runs, whatever page the client says it is on. Filters arrive
as text from the page's controls and are checked here; the queries are in
:mod:`onboard_app.services.insights`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import reflex as rx
from reflex.event import EventSpec
from sqlalchemy.exc import SQLAlchemyError

from onboard_app.services import insights
from onboard_app.services.access import ADMIN
from onboard_app.services.events import METHODS
from onboard_app.services.insights import Filters, StepStats, StuckPage, StuckUser
from onboard_app.services.onboarding import flow_version, title_of
from onboard_app.services.text import clean_text
from onboard_app.state.session import Events, requires

log = logging.getLogger("onboard.admin")

PAGE_SIZE = 20
ALL = "all"
METHOD_LABELS = {"password": "Email and password", "github": "GitHub", "oidc": "OpenID Connect"}
DEFAULT_DAYS = 7
MAX_DAYS = 365
LOAD_FAILED = "We could not load the insights just now. Try again in a moment."


@dataclass
class FunnelRow:
    """One step of the funnel as the page draws it."""

    step: str
    title: str
    reached: int
    finished: int
    drop_off: str
    median: str
    p90: str


@dataclass
class StuckRow:
    """One person of the stuck list as the page draws it."""

    user_id: int
    email: str
    name: str
    step: str
    days: int
    since: str
    signed_up: str
    method: str
    flow_version: int


def duration_text(seconds: float | None) -> str:
    """A duration as people read it: ``45 s``, ``3 min 20 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    for unit, size, smaller, smaller_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if whole >= size:
            rest = (whole % size) // smaller_size
            return f"{whole // size} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{whole} s"


def _funnel_row(stats: StepStats) -> FunnelRow:
    return FunnelRow(
        step=stats.step,
        title=stats.title,
        reached=stats.reached,
        finished=stats.finished,
        drop_off="—" if stats.drop_off is None else f"{stats.drop_off:.1f} %",
        median=duration_text(stats.median_seconds),
        p90=duration_text(stats.p90_seconds),
    )


def _stuck_row(person: StuckUser) -> StuckRow:
    return StuckRow(
        user_id=person.user_id,
        email=person.email or "",
        name=person.display_name,
        step=title_of(person.step),
        days=person.days,
        since=person.since.date().isoformat(),
        signed_up=person.signed_up_at.date().isoformat(),
        method=METHOD_LABELS.get(person.method, person.method),
        flow_version=person.flow_version,
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _parse_day(value: object) -> date | str | None:
    """A ``YYYY-MM-DD`` from a date input: the date, ``None`` when empty, else a message."""
    text = clean_text(value, max_chars=10)
    if not isinstance(text, str):
        return "Use a date like 2026-12-01."
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return "Use a date like 2026-12-01."
    return day if 2000 <= day.year <= 2100 else "Use a date between 2000 and 2100."


class AdminState(rx.State):
    """The filters, the funnel, the completions chart and the stuck list."""

    signed_up_from: str = ""
    signed_up_to: str = ""
    method: str = ALL
    version: str = ALL
    stuck_days: int = DEFAULT_DAYS
    sort: str = "days"
    descending: bool = True
    page: int = 1
    funnel: list[FunnelRow] = []
    #: The completions chart's bars: ``{"day": "2026-12-01", "completions": 3}``.
    completions: list[dict[str, Any]] = []
    stuck: list[StuckRow] = []
    stuck_total: int = 0
    filter_error: str = ""
    loading: bool = False
    loaded: bool = False

    @rx.var
    def page_count(self) -> int:
        """Pages of the stuck list (at least 1)."""
        return max(1, -(-self.stuck_total // PAGE_SIZE))

    @rx.var
    def range_text(self) -> str:
        """The people shown, like ``21–40 of 312``; empty when nobody is stuck."""
        if not self.stuck_total:
            return ""
        first = (self.page - 1) * PAGE_SIZE + 1
        return f"{first}–{first + len(self.stuck) - 1} of {self.stuck_total}"

    @rx.var
    def chart_summary(self) -> str:
        """What the completions chart shows, in words (its caption)."""
        if not self.completions:
            return ""
        total = sum(int(point["completions"]) for point in self.completions)
        first, last = self.completions[0]["day"], self.completions[-1]["day"]
        if first == last:
            return f"{_count(total, 'completion')} on {first}."
        days = len(self.completions)
        return f"{_count(total, 'completion')} over {days} days, from {first} to {last}."

    @rx.var
    def version_options(self) -> list[str]:
        """The flow versions to filter by."""
        return [str(v) for v in range(flow_version(), 0, -1)]

    def _filters(self) -> Filters:
        first, last = _parse_day(self.signed_up_from), _parse_day(self.signed_up_to)
        return Filters(
            signed_up_from=first if isinstance(first, date) else None,
            signed_up_to=last if isinstance(last, date) else None,
            method=self.method if self.method in METHODS else None,
            flow_version=int(self.version) if self.version.isdigit() else None,
        )

    async def _stuck_page(self, filters: Filters, page: int, page_size: int) -> StuckPage:
        """The stuck list with this tab's threshold and sort, read in a thread."""
        return await asyncio.to_thread(
            functools.partial(
                insights.stuck_users,
                filters,
                days=self.stuck_days,
                sort=self.sort,
                descending=self.descending,
                page=page,
                page_size=page_size,
            )
        )

    async def _refresh(self, *, everything: bool = True) -> AsyncIterator[Events]:
        """Run the queries off the event loop; the busy flag reaches the browser first."""
        self.loading = True
        yield None
        filters = self._filters()
        try:
            if everything:
                funnel, days = await asyncio.gather(
                    asyncio.to_thread(insights.funnel, filters),
                    asyncio.to_thread(insights.completions_per_day, filters),
                )
                self.funnel = [_funnel_row(s) for s in funnel]
                self.completions = [
                    {"day": d.day.isoformat(), "completions": d.completions} for d in days
                ]
            page = await self._stuck_page(filters, self.page, PAGE_SIZE)
        except SQLAlchemyError:
            log.exception("insights query failed")
            yield rx.toast.error(LOAD_FAILED)
            return
        finally:
            self.loading = False
        self.stuck = [_stuck_row(p) for p in page.people]
        self.stuck_total, self.page = page.total, page.page
        self.loaded = True

    @requires(ADMIN)
    async def load(self) -> AsyncIterator[Events]:
        """``on_load``: everything, with the current filters, from the first page."""
        self.page = 1
        async for update in self._refresh():
            yield update

    async def _set_day(self, field: str, value: object) -> AsyncIterator[Events]:
        day = _parse_day(value)
        if isinstance(day, str):
            self.filter_error = day
            return
        setattr(self, field, day.isoformat() if day else "")
        first, last = self._filters().signed_up_from, self._filters().signed_up_to
        if first and last and first > last:
            self.filter_error = "The first sign-up day is after the last one."
            return
        self.filter_error = ""
        self.page = 1
        async for update in self._refresh():
            yield update

    @requires(ADMIN)
    async def set_signed_up_from(self, value: str) -> AsyncIterator[Events]:
        """Only people who signed up on or after this day (empty: no limit)."""
        async for update in self._set_day("signed_up_from", value):
            yield update

    @requires(ADMIN)
    async def set_signed_up_to(self, value: str) -> AsyncIterator[Events]:
        """Only people who signed up on or before this day (empty: no limit)."""
        async for update in self._set_day("signed_up_to", value):
            yield update

    @requires(ADMIN)
    async def set_method(self, value: str) -> AsyncIterator[Events]:
        """Only people who sign in this way (``all``: everyone)."""
        if value != ALL and value not in METHODS:
            return
        self.method, self.page = value, 1
        async for update in self._refresh():
            yield update

    @requires(ADMIN)
    async def set_version(self, value: str) -> AsyncIterator[Events]:
        """Only journeys through this flow version (``all``: every version)."""
        if value != ALL and value not in self.version_options:
            return
        self.version, self.page = value, 1
        async for update in self._refresh():
            yield update

    @requires(ADMIN)
    async def set_stuck_days(self, value: str) -> AsyncIterator[Events]:
        """The stuck list's threshold: more than this many days at the same step."""
        text = clean_text(value, max_chars=3)
        if (
            not isinstance(text, str)
            or not (text.isascii() and text.isdigit())
            or int(text) > MAX_DAYS
        ):
            self.filter_error = f"Stuck for: a whole number of days from 0 to {MAX_DAYS}."
            return
        self.filter_error = ""
        self.stuck_days, self.page = int(text), 1
        async for update in self._refresh(everything=False):
            yield update

    @requires(ADMIN)
    async def sort_stuck(self, column: str) -> AsyncIterator[Events]:
        """Sort the stuck list by a column; the same column again reverses the order."""
        if column not in insights.STUCK_SORTS:
            return
        if column == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = column, column in ("days", "signed_up")
        self.page = 1
        async for update in self._refresh(everything=False):
            yield update

    @requires(ADMIN)
    async def next_page(self) -> AsyncIterator[Events]:
        """The next page of the stuck list."""
        if self.page < self.page_count:
            self.page += 1
        async for update in self._refresh(everything=False):
            yield update

    @requires(ADMIN)
    async def previous_page(self) -> AsyncIterator[Events]:
        """The previous page of the stuck list."""
        self.page = max(1, self.page - 1)
        async for update in self._refresh(everything=False):
            yield update

    @requires(ADMIN)
    async def clear_filters(self) -> AsyncIterator[Events]:
        """Every person, every method and version, the default threshold."""
        self.signed_up_from = self.signed_up_to = ""
        self.method = self.version = ALL
        self.stuck_days, self.filter_error, self.page = DEFAULT_DAYS, "", 1
        async for update in self._refresh():
            yield update

    @requires(ADMIN)
    async def export_funnel(self) -> Events:
        """The funnel with the current filters, as a CSV download."""
        try:
            stats = await asyncio.to_thread(insights.funnel, self._filters())
        except SQLAlchemyError:
            log.exception("funnel export failed")
            return rx.toast.error(LOAD_FAILED)
        return _download(insights.funnel_csv(stats), "onboarding-funnel")

    @requires(ADMIN)
    async def export_stuck(self) -> Events:
        """The whole stuck list (up to the export limit) as a CSV download."""
        try:
            page = await self._stuck_page(self._filters(), 1, insights.EXPORT_LIMIT)
        except SQLAlchemyError:
            log.exception("stuck list export failed")
            return rx.toast.error(LOAD_FAILED)
        return _download(insights.stuck_csv(page.people), "onboarding-stuck")


def _download(text: str, name: str) -> EventSpec:
    return rx.download(
        data=text, filename=f"{name}-{date.today().isoformat()}.csv", mime_type="text/csv"
    )
