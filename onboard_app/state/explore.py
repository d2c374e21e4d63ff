"""The explore page: catalogue items ranked by the user's interests, search and filters."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import reflex as rx
from sqlalchemy.exc import SQLAlchemyError

from onboard_app.services import catalogue, users
from onboard_app.services.access import COMPLETED
from onboard_app.services.text import TextRefused, clean_text
from onboard_app.services.topics import TOPICS, topic_label
from onboard_app.state.session import Events, requires, verified_session

log = logging.getLogger("onboard.explore")

PAGE_SIZE = 12


@dataclass
class Card:
    """One item as the page draws it."""

    slug: str
    title: str
    description: str
    url: str
    kind: str
    reason: str
    topics: list[str]


def _interests_and_page(
    user_id: int, query: str, chips: list[str], page: int, interests: list[str] | None = None
) -> tuple[list[str], catalogue.ExplorePage]:
    """The user's interests (unless given) and the page of items they rank (blocking)."""
    if interests is None:
        interests = list(users.load_answers(user_id).get("interests"))
    return interests, catalogue.explore(
        interests, query=query, topics=chips, page=page, page_size=PAGE_SIZE
    )


class ExploreState(rx.State):
    """Search text, topic chips, page number, and the page of items they select."""

    query: str = ""
    chips: list[str] = []
    page: int = 1
    cards: list[Card] = []
    total: int = 0
    has_next: bool = False
    interests: list[str] = []
    loaded: bool = False
    failed: bool = False
    #: Shown once, right after Finish: the page says onboarding is done (not a toast: a
    #: toast is drawn by another part of the page, in the frames explore draws first).
    welcome: bool = False
    #: The user who has just finished in this tab (:meth:`_prefill`; 0: none): their next
    #: ``on_load`` is the visit Finish opened (nothing to fetch if page 1 came along).
    _prefilled_for: int = 0

    @rx.var
    def interest_labels(self) -> list[str]:
        """The user's interests, as labels."""
        return [topic_label(slug) for slug in self.interests]

    @rx.var
    def range_text(self) -> str:
        """The range shown, like ``13–24 of 296``; empty when nothing matches."""
        if not self.total:
            return ""
        first = (self.page - 1) * PAGE_SIZE + 1
        last = min(self.total, first + len(self.cards) - 1)
        return f"{first}–{last} of {self.total}"

    @rx.var
    def filtering(self) -> bool:
        """Whether a search or a chip narrows the list."""
        return bool(self.query.strip() or self.chips)

    async def _refresh(self) -> Events:
        """Load the page of items for the current filters (the gate verified the session)."""
        session = verified_session()
        if session is None:  # not reached: every handler here requires a completed session
            return None
        return await self._load_for(session.user.id)

    async def _load_for(self, user_id: int, interests: list[str] | None = None) -> Events:
        """Load the page of items the current filters select for ``user_id``.

        Args:
            user_id: The verified user.
            interests: Their interests, when the caller has just read them (else read here).
        """
        try:
            self.interests, result = await asyncio.to_thread(
                _interests_and_page, user_id, self.query, list(self.chips), self.page, interests
            )
        except (SQLAlchemyError, users.UserGone):
            log.exception("explore failed for user %s", user_id)
            self.failed = True
            return rx.toast.error("We could not load the catalogue. Try again in a moment.")
        self.failed = False
        self.page = result.page
        self.total = result.total
        self.has_next = result.has_next
        self.cards = [
            Card(
                slug=item.slug,
                title=item.title,
                description=item.description,
                url=item.url,
                kind=item.kind,
                reason=item.reason,
                topics=[topic_label(t) for t in item.topics],
            )
            for item in result.items
        ]
        self.loaded = True
        return None

    async def _prefill(self, user_id: int, interests: list[str]) -> None:
        """Page 1, unfiltered, for a user who has just finished onboarding.

        Finish sends it with the new token and the redirect, so explore draws its results
        without a round trip of its own; its ``on_load`` then has nothing to fetch. Private
        (no client can call it): the caller has verified ``user_id``, and read its
        ``interests`` in Finish's own transaction.
        """
        self.query, self.chips, self.page = "", [], 1
        await self._load_for(user_id, interests)  # if it failed, explore's loader tries again
        self._prefilled_for = user_id
        self.welcome = True

    async def _close_wizard(self) -> None:
        """After Finish, once explore is drawn: a wizard page opened later shows nothing.

        Finish leaves the review page as it is (redrawing the page being left would delay
        explore); this runs with explore's first ``on_load``, when that page is gone.
        """
        from onboard_app.state.onboarding import OnboardingState  # imports this module

        wizard = await self.get_state(OnboardingState)
        wizard.loaded = False

    @requires(COMPLETED)
    async def load(self) -> Events:
        """``on_load``: the guard, then page 1 with the current filters (unless Finish sent it)."""
        session = verified_session()
        prefilled = session is not None and self._prefilled_for == session.user.id
        self._prefilled_for = 0
        if prefilled:
            await self._close_wizard()
            if self.loaded:  # this user's page 1, still shown: nothing to fetch
                return None
        elif self.welcome:  # said once, on the visit Finish opened
            self.welcome = False
        self.page = 1
        return await self._refresh()

    @requires(COMPLETED)
    async def search(self, value: str) -> Events:
        """Search titles and descriptions (the input is debounced in the browser)."""
        text = clean_text(value, max_chars=catalogue.MAX_QUERY_CHARS, strip=False)
        if isinstance(text, TextRefused):
            # Shown as typed would mean echoing what we refuse: keep the last good search.
            return rx.toast.error(text.message)
        self.query = text[: catalogue.MAX_QUERY_CHARS * 2]
        self.page = 1
        return await self._refresh()

    @requires(COMPLETED)
    async def toggle_chip(self, topic: str) -> Events:
        """Add or remove a topic filter."""
        if not isinstance(topic, str) or topic not in TOPICS:
            return None
        self.chips = (
            [t for t in self.chips if t != topic] if topic in self.chips else [*self.chips, topic]
        )
        self.page = 1
        return await self._refresh()

    @requires(COMPLETED)
    async def clear_filters(self) -> Events:
        """Drop the search text and every chip."""
        self.query = ""
        self.chips = []
        self.page = 1
        return await self._refresh()

    @requires(COMPLETED)
    async def next_page(self) -> Events:
        """Show the next page."""
        if self.has_next:
            self.page += 1
        return await self._refresh()

    @requires(COMPLETED)
    async def previous_page(self) -> Events:
        """Show the previous page."""
        self.page = max(1, self.page - 1)
        return await self._refresh()
