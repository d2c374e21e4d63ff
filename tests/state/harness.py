"""Run Reflex event handlers in-process, the way a (possibly modified) client would call them.

A handler is called as the event processor calls it: first the app's access gate
(:func:`onboard_app.state.session.admit`, the function the middleware runs), then, if
admitted, its raw function with exactly the arguments a crafted websocket message could
carry. The returned events are flattened so tests can assert on redirects and toasts. The
state tree is Reflex's own (root ``State`` with every substate).
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Iterable
from typing import Any, TypeVar

from reflex.istate.data import RouterData
from reflex.state import BaseState, State
from reflex_base.event import EventHandler, EventSpec

from onboard_app.state.session import SessionState, admit

S = TypeVar("S", bound=BaseState)


class Client:
    """One browser tab: a root state tree, its router data and its client storage."""

    def __init__(self, ip: str = "203.0.113.7", user_agent: str = "") -> None:
        self.root = State(_reflex_internal_init=True)
        self.ip = ip
        #: The ``User-Agent`` header of the tab's websocket (its session's device).
        self.user_agent = user_agent
        #: The websocket session: a new one is a reconnect (``reconnect``).
        self.sid = secrets.token_hex(8)
        self.navigate("/")
        # The tab has connected and hydrated: what its storage vars hold (tests set the
        # token directly) is what this connection's browser sent.
        self.state(SessionState)._connection = self.sid

    def state(self, cls: type[S]) -> S:
        """The instance of a substate in this tab's tree."""
        return self.root.get_substate(cls.get_full_name().split(".")[1:])  # type: ignore[return-value]

    def navigate(self, path: str, query: dict[str, str] | None = None) -> None:
        """Set the URL the next events see (as the browser's router would)."""
        query = query or {}
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        self.root.router = RouterData.from_router_data(
            {
                "pathname": path,
                "query": query,
                "asPath": path + (f"?{qs}" if qs else ""),
                "headers": {"origin": "http://localhost:3000", "user-agent": self.user_agent},
                "ip": self.ip,
                "sid": self.sid,
            }
        )

    def reconnect(self) -> None:
        """Use a new websocket connection with the same client token (and the same URL)."""
        self.sid = secrets.token_hex(8)
        self.navigate(self.root.router.url.path)

    async def call(self, handler: EventHandler, *args: Any, **kwargs: Any) -> list[Any]:
        """Run a handler with any arguments and return the events it produced."""
        cls = _owner(handler)
        name = next(n for n, h in cls.event_handlers.items() if h.fn is handler.fn)
        refusal = await admit(self.root, cls, name)
        if refusal is not None:
            return _flatten(refusal)
        result = handler.fn(self.state(cls), *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        events: list[Any] = []
        if inspect.isasyncgen(result):
            async for item in result:
                events.extend(_flatten(item))
        elif inspect.isgenerator(result):
            for item in result:
                events.extend(_flatten(item))
        else:
            events.extend(_flatten(result))
        return events

    async def open(
        self, path: str, on_load: EventHandler, query: dict[str, str] | None = None
    ) -> list[Any]:
        """Navigate and run the page's on_load handler."""
        self.navigate(path, query)
        return await self.call(on_load)


def _owner(handler: EventHandler) -> type[BaseState]:
    state_name = handler.state_full_name
    for cls in _all_states(State):
        if cls.get_full_name() == state_name:
            return cls
    raise LookupError(state_name)


def _all_states(cls: type[BaseState]) -> Iterable[type[BaseState]]:
    yield cls
    for sub in cls.get_substates():
        yield from _all_states(sub)


def _flatten(item: Any) -> list[Any]:
    if item is None:
        return []
    if isinstance(item, list | tuple):
        return [e for sub in item for e in _flatten(sub)]
    return [item]


def _arg(spec: EventSpec, name: str) -> Any:
    for var, value in spec.args:
        if str(var) == name:
            return getattr(value, "_var_value", value)
    return None


def redirects(events: list[Any]) -> list[str]:
    """The paths of the redirects among the events."""
    return [
        _arg(e, "path")
        for e in events
        if isinstance(e, EventSpec) and {str(var) for var, _ in e.args} >= {"path", "external"}
    ]


def toasts(events: list[Any]) -> list[str]:
    """The text of the toasts among the events (as rendered JavaScript)."""
    return [
        str(_arg(e, "function"))
        for e in events
        if isinstance(e, EventSpec) and "__toast" in str(_arg(e, "function"))
    ]
