"""The one shared State that holds the session JWT, and the page guard.

The token lives in ``localStorage`` (kept across reloads, shared and synced by every tab of
the browser). The client can overwrite it at any moment, so nothing here trusts it:
every handler that touches user data calls :meth:`SessionState._current_session`, which
verifies the token and checks it against the database. Identity is never taken from an
event argument.
"""

from __future__ import annotations

import logging

import reflex as rx
from reflex.event import EventSpec
from sqlalchemy.exc import SQLAlchemyError

from onboard_app import routes
from onboard_app.models import User
from onboard_app.services import access
from onboard_app.services.onboarding import Step, parse_step
from onboard_app.services.sessions import (
    Authenticated,
    SessionUser,
    authenticate,
    end_session,
    remint,
)
from onboard_app.services.tokens import Rejection, TokenRejected

log = logging.getLogger("onboard.session")

TOKEN_STORAGE_NAME = "onboard_session"  # noqa: S105 (a storage key name, not a secret)
SESSION_EXPIRED_MESSAGE = "Your session has expired. Please log in again."
OUTAGE_MESSAGE = "We cannot reach our database right now. Nothing was lost: try again in a moment."


#: What a handler may return to the browser: nothing, one event, or several.
Events = EventSpec | list[EventSpec] | None


class SessionUnavailable(Exception):
    """The session could not be checked: the database did not answer.

    Distinct from "not signed in": the token is kept, nothing is cleared, and the user is
    told to retry instead of being sent to the login page.
    """


class SessionState(rx.State):
    """The session token and what the UI may show about the signed-in user."""

    token: str = rx.LocalStorage("", name=TOKEN_STORAGE_NAME, sync=True)
    signed_in: bool = False
    user_name: str = ""
    user_email: str = ""
    user_avatar: str = ""
    reached_step: str = ""
    theme: str = "system"
    _expired: bool = False

    @rx.var
    def session_lost(self) -> bool:
        """True when another tab logged out (the synced token vanished) while shown signed in."""
        return self.signed_in and not self.token

    @rx.var
    def user_initials(self) -> str:
        """Up to two initials for the avatar fallback."""
        words = (self.user_name or self.user_email or "?").split()
        return "".join(word[0] for word in words[:2]).upper()

    def _current_session(self) -> Authenticated | None:
        """Verify the stored token against the database; heal or clear it.

        Returns:
            The session, or ``None`` (and the UI is reset to signed out).

        Raises:
            SessionUnavailable: The database did not answer (nothing is cleared).
        """
        try:
            result = authenticate(self.token)
        except SQLAlchemyError as exc:
            log.exception("session check failed: database unavailable")
            raise SessionUnavailable from exc
        if isinstance(result, TokenRejected):
            if self.token:
                log.info("session rejected: %s", result.reason)
            self._expired = result.reason in (Rejection.EXPIRED, Rejection.SESSION_EXPIRED)
            self._forget()
            return None
        self._expired = False
        if result.reminted:
            log.info(
                "session re-minted for user %s (was jti %s)", result.user.id, result.claims.jti
            )
            self.token = result.token
        self._show(result.user)
        return result

    def _adopt(self, token: str, user: User | SessionUser) -> None:
        """Keep a token minted on the server for ``user`` (login, signup, re-mint).

        Args:
            token: The new token.
            user: The user row it was minted from.
        """
        self.token = token
        self._show(user)

    def _remint_from(self, session: Authenticated, user: User) -> None:
        """Replace the token with one minted from the updated database row.

        Args:
            session: The verified session before the change.
            user: The user row after the change.
        """
        self._adopt(remint(user, session.claims), user)
        log.info("session re-minted for user %s after update", user.id)

    def _show(self, user: User | SessionUser) -> None:
        self.signed_in = True
        self.user_name = user.display_name
        self.user_email = user.email or ""
        self.user_avatar = user.avatar_url or ""
        self.reached_step = str(user.onboarding_step)
        if isinstance(user, SessionUser):
            self.theme = user.theme

    def _forget(self) -> None:
        self.token = ""
        self.signed_in = False
        self.user_name = self.user_email = self.user_avatar = self.reached_step = ""
        self.theme = "system"

    def _page_redirect(self, session: Authenticated | None) -> Events:
        """The guard's verdict for the current page.

        Args:
            session: The verified session, or ``None``.

        Returns:
            A redirect (with a notice when an expired session is the reason), or ``None``
            if the visitor may stay.
        """
        url = self.router.url
        reached = session.user.onboarding_step if session else None
        target = access.decide(url.path, reached, url.query_parameters.get("next"))
        if not target:
            return None
        redirect = rx.redirect(target, replace=True)
        if session is None and self._expired:
            self._expired = False
            return [redirect, rx.toast.info(SESSION_EXPIRED_MESSAGE)]
        return redirect

    def _home(self) -> str:
        """Where the signed-in user belongs (their onboarding step, or explore)."""
        return access.home_for(parse_step(self.reached_step) or Step.PROFILE)

    @rx.event
    def guard(self) -> Events:
        """``on_load`` of pages that need nothing but the guard."""
        try:
            return self._page_redirect(self._current_session())
        except SessionUnavailable:
            return rx.toast.error(OUTAGE_MESSAGE)

    @rx.event
    def log_out(self) -> list[EventSpec]:
        """End the session everywhere: bump the token version, clear every tab."""
        try:
            ended = end_session(self.token)
        except SQLAlchemyError:
            # Logging out must not fail: this browser forgets the token either way.
            log.exception("logout could not revoke the token: database unavailable")
            ended = False
        self._forget()
        events = [rx.redirect(routes.LOGIN, replace=True)]
        if ended:
            events.append(rx.toast.info("You are logged out."))
        return events


async def guarded_session(state: rx.State) -> tuple[SessionState, Authenticated | None, Events]:
    """The page guard for a page's ``on_load``: the session, or what to answer instead.

    Args:
        state: The calling state.

    Returns:
        The session state, the session (``None`` when the page must not load), and the
        events to return when it must not (a redirect, or a message during an outage).
    """
    try:
        session_state, session = await session_of(state)
    except SessionUnavailable:
        return await state.get_state(SessionState), None, rx.toast.error(OUTAGE_MESSAGE)
    redirect = session_state._page_redirect(session)
    if redirect is not None or session is None:
        return session_state, None, redirect
    return session_state, session, None


async def session_of(state: rx.State) -> tuple[SessionState, Authenticated | None]:
    """The shared session state and its verified session, from any other state.

    Args:
        state: The calling state.

    Returns:
        The session state and the session (``None`` when not authenticated).
    """
    session_state = await state.get_state(SessionState)
    return session_state, session_state._current_session()
