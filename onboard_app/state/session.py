"""The one shared State that holds the session JWT, and the gate every event passes.

The token lives in ``localStorage`` (kept across reloads, shared and synced by every tab of
the browser). The client can overwrite it at any moment, so nothing here trusts it.

Every public event handler of the app declares an access rule with :func:`requires`
(rules are in :mod:`onboard_app.services.access`). :class:`AccessGate`, a Reflex
middleware, runs before every event: it verifies the token of *this connection* against
the database, checks the handler's rule, and either lets the body run (the verified
session is then available through :func:`session_of`) or answers with a redirect and
nothing else. A handler without a declared rule, including Reflex's generic ``setvar``,
never runs. The router path plays no part in the decision.

User data is kept only for the connection whose token was verified: a websocket that
(re)connects hydrates from a state with every user var reset, and a state reached from
another connection (a leaked client token) is wiped before anything runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import redis.exceptions
import reflex as rx
from reflex.app import default_backend_exception_handler
from reflex.event import EventSpec
from reflex.state import BaseState, State
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from onboard_app import routes, telemetry
from onboard_app.models import User
from onboard_app.services import access
from onboard_app.services.access import Rule
from onboard_app.services.audit import audit
from onboard_app.services.onboarding import first_step, parse_step
from onboard_app.services.sessions import (
    Authenticated,
    Client,
    SessionUser,
    authenticate_off_loop,
    end_session,
    remint,
    start_session,
)
from onboard_app.services.tokens import Rejection, TokenRejected

if TYPE_CHECKING:
    from reflex.app import App
    from reflex.event import Event, EventHandler

log = logging.getLogger("onboard.session")

TOKEN_STORAGE_NAME = "onboard_session"  # noqa: S105 (a storage key name, not a secret)
SESSION_EXPIRED_MESSAGE = "Your session has expired. Please log in again."
OUTAGE_MESSAGE = "We cannot reach our database right now. Nothing was lost: try again in a moment."
REATTACHED_MESSAGE = "We reconnected this page. Please try that again."
#: A cookie nobody sets: removing it is how the gate asks a page to hydrate again.
REHYDRATE_COOKIE = "onboard_rehydrate"

#: What a handler may return to the browser: nothing, one event, or several.
Events = EventSpec | list[EventSpec] | None

RULE_ATTRIBUTE = "__onboard_access_rule__"


def requires(rule: Rule, *, background: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Declare an event handler and what it requires of the verified session.

    Use instead of ``@rx.event``: the handler is registered with Reflex and :class:`AccessGate`
    checks ``rule`` before its body runs.

    Args:
        rule: One of the rules of :mod:`onboard_app.services.access`.
        background: A Reflex background event: the gate checks the rule with the tab's state
            locked as always, then the body runs without the lock (it writes state only
            inside ``async with self``). For work that may wait longer than Reflex's state
            lock may be held (a password-hash slot in a sign-up storm).

    Returns:
        The decorator.
    """

    def declare(fn: Callable[..., Any]) -> Any:
        setattr(fn, RULE_ATTRIBUTE, rule)
        return rx.event(fn, background=True) if background else rx.event(fn)

    return declare


def rule_of(handler: EventHandler) -> Rule | None:
    """The rule a handler declared, or ``None`` (it then never runs)."""
    return getattr(handler.fn, RULE_ATTRIBUTE, None)


class SessionUnavailable(Exception):
    """The session could not be checked: the database did not answer.

    Distinct from "not signed in": the token is kept, nothing is cleared, and the user is
    told to retry instead of being sent to the login page.
    """


class _Outage:
    """Marker: the session could not be checked for this event."""


_OUTAGE = _Outage()
#: The verified session of the event being processed (set by the gate, read by handlers).
_VERIFIED: ContextVar[Authenticated | _Outage | None] = ContextVar("onboard_session", default=None)


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
    #: The websocket session (sid) whose client storage the token came from; ``None`` until
    #: a connection attaches (a new state, or one the server lost).
    _connection: str | None = None

    @rx.var
    def session_lost(self) -> bool:
        """True when another tab logged out (the synced token vanished) while shown signed in."""
        return self.signed_in and not self.token

    @rx.var
    def user_initials(self) -> str:
        """Up to two initials for the avatar fallback."""
        words = (self.user_name or self.user_email or "?").split()
        return "".join(word[0] for word in words[:2]).upper()

    async def _verify(self) -> Authenticated | None:
        """Verify the stored token against the database; heal it, or clear every user var.

        Returns:
            The session, or ``None``.

        Raises:
            SessionUnavailable: The database did not answer (nothing is cleared).
        """
        if not isinstance(self.token, str) or not self.token:
            if self.token != "":  # garbage from storage: nobody, and clean
                await self._forget()
            return None
        try:
            result = await authenticate_off_loop(self.token, client=client_of(self))
        except SQLAlchemyError as exc:
            log.exception("session check failed: database unavailable")
            raise SessionUnavailable from exc
        if isinstance(result, TokenRejected):
            audit("token_rejected", reason=result.reason, client=self.router.session.client_ip)
            self._expired = result.reason in (Rejection.EXPIRED, Rejection.SESSION_EXPIRED)
            await self._forget()
            return None
        if self._expired:
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
        self._connection = self.router.session.session_id
        self._show(user)

    async def _start(self, user: User) -> None:
        """Sign this tab in as ``user``: a new device session, off the event loop.

        Args:
            user: The user row, as just read or written by the sign-in.

        Raises:
            SQLAlchemyError: The session could not be recorded (nobody is signed in).
            UserGone: The user was deleted meanwhile.
        """
        token = await asyncio.to_thread(start_session, user, client=client_of(self))
        self._adopt(token, user)

    def _remint_from(self, session: Authenticated, user: User) -> None:
        """Replace the token with one minted from the updated database row.

        Args:
            session: The verified session before the change.
            user: The user row after the change.
        """
        self._adopt(remint(user, session.claims), user)
        log.info("session re-minted for user %s after update", user.id)

    def _show(self, user: User | SessionUser) -> None:
        """Show ``user``; a var that shows its value already is not assigned again.

        The gate calls this on every event: assigning an unchanged var would still send it
        in the event's delta and have Reflex save the state again.
        """
        shown: dict[str, object] = {
            "signed_in": True,
            "user_name": user.display_name,
            "user_email": user.email or "",
            "user_avatar": user.avatar_url or "",
            "reached_step": str(user.onboarding_step),
        }
        if isinstance(user, SessionUser):
            shown["theme"] = user.theme
        for name, value in shown.items():
            if getattr(self, name) != value:
                setattr(self, name, value)

    async def _forget(self) -> None:
        """Sign this tab out: drop the token and every user var of every state."""
        self.token = ""
        await clear_user_data(self)

    def _home(self) -> str:
        """Where the signed-in user belongs (their onboarding step, or explore)."""
        return access.home_for(parse_step(self.reached_step) or first_step())

    @requires(access.ANYONE)
    async def guard(self) -> Events:
        """``on_load`` of pages that need nothing but the guard (home, login, signup)."""
        try:
            session = verified_session()
        except SessionUnavailable:
            return rx.toast.error(OUTAGE_MESSAGE)
        url = self.router.url
        reached = session.user.onboarding_step if session else None
        verified = session.user.email_verified if session else True
        target = access.decide(
            url.path, reached, url.query_parameters.get("next"), verified=verified
        )
        if not target:
            return None
        return self._with_expiry_notice(rx.redirect(target, replace=True))

    def _with_expiry_notice(self, redirect: EventSpec) -> Events:
        if self._expired and not self.signed_in:
            self._expired = False
            return [redirect, rx.toast.info(SESSION_EXPIRED_MESSAGE)]
        return redirect

    @requires(access.ANYONE)
    async def log_out(self) -> list[EventSpec]:
        """End the session everywhere: bump the token version, clear every tab."""
        try:
            session = verified_session()
        except SessionUnavailable:
            session = None
        try:
            ended = await asyncio.to_thread(end_session, self.token)
        except SQLAlchemyError:
            # Logging out must not fail: this browser forgets the token either way.
            log.exception("logout could not revoke the token: database unavailable")
            ended = False
        await self._forget()
        events = [rx.redirect(routes.LOGIN, replace=True)]
        if ended:
            audit(
                "logout",
                user_id=session.user.id if session else None,
                client=self.router.session.client_ip,
            )
            events.append(rx.toast.info("You are logged out."))
        return events


def client_of(state: BaseState) -> Client:
    """Where this event comes from: the client's address and user agent (for its session)."""
    return Client(
        address=state.router.session.client_ip or "",
        user_agent=state.router.headers.user_agent or "",
    )


def verified_session() -> Authenticated | None:
    """The session the gate verified for the event being processed.

    Returns:
        The session, or ``None`` when the caller is not signed in.

    Raises:
        SessionUnavailable: The database did not answer when the gate checked.
    """
    value = _VERIFIED.get()
    if isinstance(value, _Outage):
        raise SessionUnavailable
    return value


async def session_of(state: BaseState) -> tuple[SessionState, Authenticated | None]:
    """The shared session state and the verified session of this event, from any state.

    Args:
        state: The calling state.

    Returns:
        The session state and the session (``None`` when not authenticated).

    Raises:
        SessionUnavailable: The database did not answer when the gate checked.
    """
    return await state.get_state(SessionState), verified_session()


# --- user data ------------------------------------------------------------------------------


def app_states() -> list[type[BaseState]]:
    """Every State class of this app, from Reflex's own state tree."""
    found: list[type[BaseState]] = []
    pending: list[type[BaseState]] = [State]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("onboard_app."):
            found.append(cls)
        pending.extend(cls.get_substates())
    return found


async def clear_user_data(state: BaseState) -> None:
    """Reset every var the browser can see, in every state of the app, to its default.

    Backend-only vars (``_``-prefixed: a pending OAuth login, say) are kept: they never
    reach the browser. Client storage is left to the caller (logout clears the token).
    A var that holds its default already is not assigned: an assignment marks its state
    touched, and Reflex saves every touched state, so a connect would otherwise store
    every state of the app for every tab, including the many it never opens.

    Args:
        state: Any state of the tab's tree.
    """
    for cls in app_states():
        instance = await state.get_state(cls)
        for name, field in cls.get_fields().items():
            if (
                name in cls.base_vars
                and getattr(field, "_owner", cls) is cls
                and not cls._is_client_storage(name)
            ):
                default = field.default_value()
                value = getattr(instance, name)
                value = getattr(value, "__wrapped__", value)  # a list or dict comes proxied
                if type(value) is not type(default) or value != default:
                    setattr(instance, name, default)


# --- the gate -------------------------------------------------------------------------------

#: Reflex's own handlers (hydration, client storage, page loads, error reports) and what
#: they require. Everything else on Reflex's states (``setvar`` ...) is refused.
REFLEX_HANDLERS: dict[str, Rule] = {
    "hydrate": access.ANYONE,
    "hydrate_and_load": access.ANYONE,
    "set_is_hydrated": access.ANYONE,
    "update_vars_internal": access.ANYONE,
    "on_load_internal": access.ANYONE,
    "handle_frontend_exception": access.ANYONE,
}
_HYDRATE_EVENTS = frozenset(("hydrate", "hydrate_and_load"))


def declared_rule(cls: type[BaseState], name: str) -> Rule | None:
    """The rule of handler ``name`` of state ``cls`` (``None``: undeclared, never runs).

    Args:
        cls: The state that owns the handler.
        name: The handler's name.

    Returns:
        The rule, or ``None``.
    """
    if not cls.__module__.startswith("onboard_app."):
        return REFLEX_HANDLERS.get(name)
    handler = cls.event_handlers.get(name)
    return rule_of(handler) if handler is not None else None


def rule_table() -> list[tuple[str, str]]:
    """Every public handler of the app and the name of its rule, for docs and operators."""
    return sorted(
        (f"{cls.__name__}.{name}", rule.name)
        for cls in app_states()
        for name in cls.event_handlers
        if (rule := declared_rule(cls, name)) is not None
    )


class _RefusalLog:
    """Refused calls are logged, at most a few per minute per reason (junk stays bounded)."""

    def __init__(self, per_minute: int = 20) -> None:
        self._per_minute = per_minute
        self._window = 0
        self._counts: dict[str, int] = {}

    def note(self, reason: str, handler: str) -> None:
        window = int(time.monotonic() // 60)
        if window != self._window:
            self._window, self._counts = window, {}
        count = self._counts[reason] = self._counts.get(reason, 0) + 1
        if count <= self._per_minute:
            log.info("event refused (%s): %s", reason, handler)
        elif count == self._per_minute + 1:
            log.info("event refused (%s): further refusals this minute not logged", reason)


_refusals = _RefusalLog()


async def admit(state: BaseState, cls: type[BaseState], name: str) -> Events | None:
    """The one check before every event: this connection's session against the rule.

    Sets the verified session for :func:`session_of`. The router path is not consulted.

    Args:
        state: The tab's state tree (any state of it).
        cls: The state whose handler is called.
        name: The handler's name.

    Returns:
        ``None`` if the handler may run; otherwise what to answer instead (possibly
        nothing at all).
    """
    _VERIFIED.set(None)
    session_state = await state.get_state(SessionState)
    connection = session_state.router.session.session_id
    if name in _HYDRATE_EVENTS and not cls.__module__.startswith("onboard_app."):
        # A (re)connect: nothing of an earlier connection reaches this one. The token in
        # the tab's storage arrives with this very event.
        await clear_user_data(session_state)
        session_state._connection = connection
        return None
    rule = declared_rule(cls, name)
    own = cls.__module__.startswith("onboard_app.")
    if session_state._connection is None and own and rule is not None and not rule.closed:
        # No connection ever attached this state, yet a page calls its handler: the server
        # lost the tab's state (Redis restarted empty, or expired it after an idle hour).
        # The browser still holds the token: have the page hydrate again, as a reconnect
        # does, instead of judging the tab a stranger (sent to /login). Removing a cookie
        # makes Reflex's frontend send its storage in a fresh hydrate; none has this name.
        return [rx.remove_cookie(REHYDRATE_COOKIE), rx.toast.info(REATTACHED_MESSAGE)]
    if session_state._connection != connection:
        # The state was reached from another connection than the one whose storage gave
        # it its token (a leaked or replayed client token): start from nothing.
        session_state.token = ""
        await clear_user_data(session_state)
        session_state._connection = connection
    if rule is None or rule.closed:
        _refusals.note("undeclared" if rule is None else "closed", f"{cls.__name__}.{name}")
        return []
    if not own:
        return None
    try:
        with telemetry.span("onboard.session_check"):
            session = await session_state._verify()
    except SessionUnavailable:
        _VERIFIED.set(_OUTAGE)
        if rule.signed_in:
            return rx.toast.error(OUTAGE_MESSAGE)
        return None
    _VERIFIED.set(session)
    reached = session.user.onboarding_step if session else None
    open_step = None
    if rule.open_step:
        open_step = parse_step(getattr(await state.get_state(cls), "_open_step", None))
    role = session.user.role if session else None
    verified = session.user.email_verified if session else True
    if access.permits(rule, reached, open_step, verified=verified, role=role):
        return None
    _refusals.note(rule.name, f"{cls.__name__}.{name}")
    step = rule.step or open_step
    wanted = routes.onboarding(step) if step else session_state.router.url.path
    target = access.refused_target(reached, wanted, verified=verified)
    return session_state._with_expiry_notice(rx.redirect(target, replace=True))


class AccessGate(rx.Middleware):
    """Reflex middleware: :func:`admit` before every event; a refusal ends the event."""

    async def preprocess(self, app: App, state: BaseState, event: Event) -> Any:
        """Check the event's handler against its rule; answer a refusal ourselves.

        Args:
            app: The app.
            state: The tab's state tree.
            event: The incoming event.

        Returns:
            ``None`` to let the handler run, or an empty update when it was refused.
        """
        from reflex.state import RegistrationContext, StateUpdate

        # Reflex has no public name for the step that turns returned events into a delta
        # and browser events; the middleware uses the one its event processor uses.
        from reflex_base.event.processor.base_state_processor import chain_updates

        registered = RegistrationContext.get().event_handlers.get(event.name)
        if registered is None:
            return None
        cls = registered.states[0]
        name = event.name.rpartition(".")[2]
        refusal = await admit(state, cls, name)
        if refusal is None:
            return None
        await chain_updates(
            refusal, handler_name="AccessGate.refuse", root_state=state._get_root_state()
        )
        return StateUpdate()


# --- errors no handler caught ---------------------------------------------------------------

#: What an unreachable store raises: Redis (Reflex loading or saving a tab's state, its
#: locks) and the database (a connection that cannot be opened).
_OUTAGES: dict[type[Exception], str] = {
    redis.exceptions.ConnectionError: "Redis",
    redis.exceptions.TimeoutError: "Redis",
    OperationalError: "database",
}


def outage_of(exception: BaseException) -> str | None:
    """The store whose outage caused ``exception`` (through its causes), or ``None``."""
    seen: BaseException | None = exception
    for _ in range(10):
        if seen is None:
            return None
        for kind, store in _OUTAGES.items():
            if isinstance(seen, kind):
                return store
        seen = seen.__cause__ or seen.__context__
    return None


def answer_backend_error(exception: Exception) -> EventSpec:
    """Reflex's backend exception handler: the app's own message when a store is down.

    Reflex calls it for what no handler caught, including failures before any handler runs
    (loading the tab's state from Redis during an outage). An outage is logged in one line
    (no traceback, no message text that could quote a query's values) and the user is told
    that nothing was lost; anything else keeps Reflex's answer (a logged traceback).

    Args:
        exception: What the event raised.

    Returns:
        The toast to show.
    """
    if (store := outage_of(exception)) is None:
        return default_backend_exception_handler(exception)
    log.warning("event failed: %s unreachable (%s)", store, type(exception).__name__)
    return rx.toast.error(OUTAGE_MESSAGE)
