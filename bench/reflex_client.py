"""A client that speaks Reflex's websocket event protocol, as the compiled frontend does.

No browser: this is what ``.web/utils/state.js`` does on the wire, in Python
(python-socketio's asyncio client over aiohttp), so load tests and multi-worker tests can
drive many independent sessions and know which connection carried which event.

The protocol, as Reflex 0.10 speaks it:

* The socket connects to ``/_event`` with ``?token=<client token>`` (one per browser tab,
  kept in ``sessionStorage``). The socket.io CONNECT packet carries ``auth = {"event":
  hydrate_and_load, "state_schema": ...}``: the boot event rides in the handshake.
* ``hydrate_and_load`` carries the client storage values (``vars``, e.g. the session token
  from ``localStorage``) and, on the first connect, the hashes of the compiled initial
  state so the server sends only what differs. It emits the state snapshot with
  ``is_hydrated = False``, then runs the page's ``on_load`` handlers and finally sets
  ``is_hydrated = True``.
* Every event is ``emit("event", {"name": "<state path>.<handler>", "payload": {...},
  "router_data": {"pathname": ..., "asPath": ...}})``.
* The server answers with ``"event"`` messages ``{"delta": {state path: {var_rx_state_:
  value}}, "events": [frontend events such as _redirect]}``. There is no "done" marker
  (``final`` is deprecated), so every call says what its last message looks like.
* A client-side navigation (after a ``_redirect``) sends ``update_vars_internal`` with the
  client storage values and ``on_load_internal``; the page is loaded when ``is_hydrated``
  turns true again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import socketio

ROOT_STATE: Final = "reflex___state____state"
FIELD: Final = "_rx_state_"
HYDRATE_AND_LOAD: Final = f"{ROOT_STATE}.hydrate_and_load"
UPDATE_VARS: Final = (
    f"{ROOT_STATE}.reflex___state____update_vars_internal_state.update_vars_internal"
)
ON_LOAD: Final = f"{ROOT_STATE}.reflex___state____on_load_internal_state.on_load_internal"
IS_HYDRATED: Final = f"is_hydrated{FIELD}"
MAX_REDIRECTS: Final = 4
# The frontend opens io("ws://host/_event", {path: "/_event"}): the URL's path is both the
# engine.io endpoint and the socket.io namespace.
EVENT_PATH: Final = "/_event"


class ProtocolError(RuntimeError):
    """The server did not answer an event the way the frontend expects."""


class EventTimeout(ProtocolError):
    """No message completing an event arrived in time."""


@dataclass(frozen=True)
class FrontendBuild:
    """What a compiled frontend sends besides events (read from ``.web/utils/context.jsx``).

    Attributes:
        state_schema: Hash of the state tree the frontend was compiled for, or ``None``.
        hashes: Hashes of the compiled initial state (sent on the first hydrate), or ``None``.
        local_storage: Client storage vars kept in ``localStorage``: state key -> options.
    """

    state_schema: str | None = None
    hashes: tuple[str, ...] | None = None
    local_storage: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, web_dir: Path) -> FrontendBuild:
        """Read the compiled constants, or behave like an older frontend if there are none.

        Args:
            web_dir: The app's ``.web`` directory.

        Returns:
            The build's constants (empty when ``context.jsx`` is missing or unreadable).
        """
        path = web_dir / "utils" / "context.jsx"
        try:
            text = path.read_text()
        except OSError:
            return cls()
        values: dict[str, Any] = {}
        for line in text.splitlines():
            for name in ("stateSchema", "initialStateHashes", "clientStorage"):
                prefix = f"export const {name} = "
                if line.startswith(prefix):
                    with contextlib.suppress(json.JSONDecodeError):
                        values[name] = json.loads(line.removeprefix(prefix).rstrip(";"))
        storage = values.get("clientStorage") or {}
        hashes = values.get("initialStateHashes")
        return cls(
            state_schema=values.get("stateSchema"),
            hashes=tuple(hashes) if hashes else None,
            local_storage=storage.get("local_storage") or {},
        )


@dataclass(frozen=True)
class Update:
    """One ``event`` message from the server.

    Attributes:
        received: ``time.perf_counter()`` when it arrived.
        delta: State path -> changed vars (names with the ``_rx_state_`` suffix).
        events: Frontend events (``{"name": ..., "payload": ...}``).
    """

    received: float
    delta: Mapping[str, Mapping[str, Any]]
    events: Sequence[Mapping[str, Any]]

    def redirect(self) -> str | None:
        """The path of the last ``_redirect`` in this message, if any."""
        paths = [e["payload"].get("path") for e in self.events if e.get("name") == "_redirect"]
        return paths[-1] if paths else None

    def value(self, state: str, var: str, default: Any = None) -> Any:
        """A var's new value in this message (``default`` if it did not change)."""
        return self.delta.get(state, {}).get(var + FIELD, default)


Until = Callable[[Update], bool]


def redirected(update: Update) -> bool:
    """Completion test for handlers that end with a redirect (submit, finish, login)."""
    return update.redirect() is not None


def hydrated(update: Update) -> bool:
    """Completion test for page loads: ``is_hydrated`` turned true."""
    return update.delta.get(ROOT_STATE, {}).get(IS_HYDRATED) is True


#: Reads the verification code mailed to an address.
CodeFor = Callable[[str], str]


def changed(state: str, var: str) -> Until:
    """Completion test for a setter: the var is in the delta."""
    return lambda update: (var + FIELD) in update.delta.get(state, {})


@dataclass(frozen=True)
class Timing:
    """How long one event took, from send to the message that completed it.

    Attributes:
        label: What was done (``open /onboarding/profile``, ``submit_profile``...).
        seconds: The latency.
        sent: ``time.perf_counter()`` when the event was sent (for rates over a window).
    """

    label: str
    seconds: float
    sent: float = 0.0


class ReflexClient:
    """One browser tab, without the browser: a socket, a state mirror and client storage.

    Args:
        base_url: The app's address, e.g. ``http://127.0.0.1:3000``.
        build: The compiled frontend's constants (schema, hashes, storage names).
        local_storage: Initial ``localStorage`` (by storage name), e.g. a session token.
        timeout: Seconds to wait for any one event to complete.
        origin: The page's origin sent with the websocket handshake (default ``base_url``);
            production refuses sockets from other origins.
    """

    def __init__(
        self,
        base_url: str,
        *,
        build: FrontendBuild | None = None,
        local_storage: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        origin: str | None = None,
    ) -> None:
        """Prepare a disconnected tab."""
        self.base_url = base_url.rstrip("/")
        self.origin = (origin or base_url).rstrip("/")
        self.build = build or FrontendBuild()
        self.local_storage: dict[str, str] = dict(local_storage or {})
        self.client_token = str(uuid.uuid4())
        self.timeout = timeout
        self.path = "/"
        self.state: dict[str, dict[str, Any]] = {}
        self.timings: list[Timing] = []
        self.disconnected = asyncio.Event()
        self._inbox: asyncio.Queue[Update] = asyncio.Queue()
        self._first_hydrate = True
        self._sio = socketio.AsyncClient(reconnection=False)
        self._sio.on("event", self._on_event, namespace=EVENT_PATH)
        self._sio.on("new_token", self._on_new_token, namespace=EVENT_PATH)
        self._sio.on("disconnect", self._on_disconnect, namespace=EVENT_PATH)

    # -- connection ------------------------------------------------------------------

    async def connect(self, path: str) -> list[Update]:
        """Open a page: connect the socket with the boot event and wait for its on_load.

        Args:
            path: The page, e.g. ``/signup``.

        Returns:
            The messages up to the hydrated page.
        """
        self.path = path
        self.disconnected.clear()
        payload: dict[str, Any] = {}
        storage = self._storage_vars()
        if storage:
            payload["vars"] = storage
        if self._first_hydrate and self.build.hashes:
            payload["hashes"] = list(self.build.hashes)
        self._first_hydrate = False
        auth: dict[str, Any] = {"event": self._event(HYDRATE_AND_LOAD, payload)}
        if self.build.state_schema:
            auth["state_schema"] = self.build.state_schema
        self._drain()
        started = time.perf_counter()
        await self._sio.connect(
            f"{self.base_url}?token={self.client_token}",
            headers={"Origin": self.origin},
            auth=auth,
            transports=["websocket"],
            namespaces=[EVENT_PATH],
            socketio_path=EVENT_PATH,
            wait_timeout=self.timeout,
        )
        updates = await self._wait(hydrated, started, f"open {path}")
        return await self._follow(updates)

    async def close(self) -> None:
        """Close the socket (like closing the tab)."""
        if self._sio.connected:
            await self._sio.disconnect()

    @property
    def local_port(self) -> int:
        """The client-side TCP port of the websocket (tells which server process has it)."""
        ws = getattr(self._sio.eio, "ws", None)
        sockname = ws.get_extra_info("sockname") if ws is not None else None
        if not sockname:
            raise ProtocolError("the socket is not connected")
        return int(sockname[1])

    # -- events ----------------------------------------------------------------------

    async def call(
        self,
        handler: str,
        payload: Mapping[str, Any] | None = None,
        *,
        until: Until,
        label: str | None = None,
    ) -> list[Update]:
        """Send one event and wait for the message that completes it.

        Args:
            handler: Full event name (``<state path>.<handler>``).
            payload: The handler's arguments by name.
            until: Recognises the event's last message.
            label: Name for the timing (default: the handler's short name).

        Returns:
            The messages received for the event, the completing one last.
        """
        self._drain()
        started = time.perf_counter()
        await self._emit(self._event(handler, dict(payload or {})))
        return await self._wait(until, started, label or handler.rsplit(".", 1)[-1])

    async def navigate(self, path: str) -> list[Update]:
        """Client-side navigation: storage values and on_load for the new page.

        Follows the redirects the page's guard answers with, as the router would.

        Args:
            path: The page to open.

        Returns:
            The messages up to the last hydrated page.
        """
        self.path = path
        self.state.setdefault(ROOT_STATE, {})[IS_HYDRATED] = False
        self._drain()
        started = time.perf_counter()
        storage = self._storage_vars()
        if storage:
            await self._emit(self._event(UPDATE_VARS, {"vars": storage}))
        await self._emit(self._event(ON_LOAD, {}))
        updates = await self._wait(hydrated, started, f"open {path.split('?')[0]}")
        return await self._follow(updates)

    async def follow(self, updates: Sequence[Update]) -> list[Update]:
        """Navigate to where the last redirect in ``updates`` points (if any)."""
        return await self._follow(list(updates))

    def var(self, state: str, name: str, default: Any = None) -> Any:
        """The current value of a var, as the browser's store would hold it."""
        return self.state.get(state, {}).get(name + FIELD, default)

    # -- internals -------------------------------------------------------------------

    async def _follow(self, updates: list[Update]) -> list[Update]:
        for _ in range(MAX_REDIRECTS):
            target = next((u.redirect() for u in reversed(updates) if u.redirect()), None)
            if target is None or target == self.path:
                return updates
            updates = await self.navigate(target)
        raise ProtocolError(f"more than {MAX_REDIRECTS} redirects from {self.path}")

    async def _emit(self, event: Mapping[str, Any]) -> None:
        await self._sio.emit("event", dict(event), namespace=EVENT_PATH)

    def _event(self, name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = {
            "name": name,
            "router_data": {"pathname": self.path.split("?")[0], "asPath": self.path},
        }
        if payload:
            event["payload"] = dict(payload)
        return event

    def _storage_vars(self) -> dict[str, str]:
        values = {}
        for state_key, options in self.build.local_storage.items():
            value = self.local_storage.get(options.get("name") or state_key)
            if value is not None:
                values[state_key] = value
        return values

    def _drain(self) -> None:
        while not self._inbox.empty():
            self._inbox.get_nowait()

    async def _wait(self, until: Until, started: float, label: str) -> list[Update]:
        updates: list[Update] = []
        deadline = started + self.timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or (self.disconnected.is_set() and self._inbox.empty()):
                why = "disconnected" if self.disconnected.is_set() else "timed out"
                raise EventTimeout(f"{label}: {why} after {len(updates)} message(s)")
            getter = asyncio.ensure_future(self._inbox.get())
            closed = asyncio.ensure_future(self.disconnected.wait())
            done, _ = await asyncio.wait(
                {getter, closed}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            closed.cancel()
            if getter not in done:
                getter.cancel()
                continue
            update = getter.result()
            updates.append(update)
            if until(update):
                self.timings.append(Timing(label, update.received - started, started))
                return updates

    async def _on_event(self, message: Mapping[str, Any]) -> None:
        update = Update(
            received=time.perf_counter(),
            delta=message.get("delta") or {},
            events=message.get("events") or [],
        )
        for state, changes in update.delta.items():
            self.state.setdefault(state, {}).update(changes)
        self._store_client_storage(update.delta)
        for event in update.events:
            if event.get("name") in ("_clear_local_storage",):
                self.local_storage.clear()
            elif event.get("name") == "_remove_local_storage":
                self.local_storage.pop(event.get("payload", {}).get("key", ""), None)
        self._inbox.put_nowait(update)

    def _store_client_storage(self, delta: Mapping[str, Mapping[str, Any]]) -> None:
        # Like applyClientStorageDelta: a not-yet-hydrated snapshot does not write storage.
        if delta.get(ROOT_STATE, {}).get(IS_HYDRATED) is False:
            return
        for state, changes in delta.items():
            for var, value in changes.items():
                options = self.build.local_storage.get(f"{state}.{var}")
                if options is not None:
                    self.local_storage[options.get("name") or f"{state}.{var}"] = value

    async def _on_new_token(self, token: str) -> None:
        self.client_token = token

    async def _on_disconnect(self, *_args: object) -> None:
        self.disconnected.set()


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (to look at what a client holds).

    Args:
        token: The compact JWT.

    Returns:
        The claims (empty if the token is not a JWT).
    """
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


@dataclass(frozen=True)
class OnboardNames:
    """Onboard's state paths, event names and storage name, from the app's own classes.

    Attributes:
        session: Path of the state holding the session token.
        auth_form: Path of the login/signup form state (``busy``, ``form_error``...).
        answers: Path of the wizard's answers state.
        handlers: Short handler name -> the full event name the compiled frontend sends.
        token_storage: The ``localStorage`` key of the session token.
    """

    session: str
    auth_form: str
    answers: str
    handlers: Mapping[str, str]
    token_storage: str = "onboard_session"

    @classmethod
    def resolve(cls) -> OnboardNames:
        """Import the states (no app start) and name their handlers as the compiler does."""
        from reflex_base.event import EventHandler
        from reflex_base.utils.format import format_event_handler

        from onboard_app.state.auth import (
            AuthFormState,
            LoginState,
            SignupState,
            VerifyEmailState,
        )
        from onboard_app.state.onboarding import OnboardingState
        from onboard_app.state.session import TOKEN_STORAGE_NAME, SessionState

        handlers = [
            SignupState.sign_up,
            VerifyEmailState.submit_code,
            LoginState.log_in,
            SessionState.log_out,
            OnboardingState.set_field,
            OnboardingState.toggle_choice,
            OnboardingState.submit,
            OnboardingState.finish_onboarding,
        ]
        return cls(
            session=SessionState.get_full_name(),
            auth_form=AuthFormState.get_full_name(),
            answers=OnboardingState.get_full_name(),
            handlers={
                h.fn.__name__: format_event_handler(h) for h in cast("list[EventHandler]", handlers)
            },
            token_storage=TOKEN_STORAGE_NAME,
        )


PROFILE: Final = (
    ("display_name", "Ada Lovelace"),
    ("role", "developer"),
    ("bio", "I write programs for engines."),
)
INTERESTS: Final = ("python", "security", "databases")
PREFERENCES: Final = (
    ("experience_level", "intermediate"),
    ("email_digest", "no"),
    ("theme", "light"),
)


class OnboardClient(ReflexClient):
    """A tab of Onboard: signup, login, logout and the wizard through the real events.

    Args:
        base_url: The app's address.
        names: Onboard's state paths (:meth:`OnboardNames.resolve`).
        build: The compiled frontend's constants; the session token's storage entry is
            added when the build is not available.
        local_storage: Initial ``localStorage`` (e.g. another tab's session token).
        timeout: Seconds to wait for any one event.
        origin: The page's origin for the websocket handshake (default ``base_url``).
    """

    def __init__(
        self,
        base_url: str,
        names: OnboardNames,
        *,
        build: FrontendBuild | None = None,
        local_storage: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        origin: str | None = None,
    ) -> None:
        """Prepare a disconnected tab."""
        build = build or FrontendBuild()
        token_key = f"{names.session}.token{FIELD}"
        if token_key not in build.local_storage:
            storage = {
                **build.local_storage,
                token_key: {"name": names.token_storage, "sync": True},
            }
            build = FrontendBuild(build.state_schema, build.hashes, storage)
        super().__init__(
            base_url, build=build, local_storage=local_storage, timeout=timeout, origin=origin
        )
        self.names = names

    @property
    def token(self) -> str:
        """The session token in this tab's ``localStorage`` (empty if none)."""
        return self.local_storage.get(self.names.token_storage, "")

    def claims(self) -> dict[str, Any]:
        """The unverified claims of the stored session token."""
        return jwt_claims(self.token)

    @property
    def form_error(self) -> str:
        """The login/signup form's error message."""
        return str(self.var(self.names.auth_form, "form_error", ""))

    async def sign_up(
        self, email: str, password: str, code_for: CodeFor | None = None
    ) -> list[Update]:
        """Submit the signup form and, given ``code_for``, type the mailed code.

        Args:
            email: The new account's address.
            password: Its password.
            code_for: Reads the 6-digit code mailed to an address (blocking; run in a
                thread). Without it the tab stays on the "check your email" screen.

        Returns:
            The messages, up to the wizard when the code was typed.
        """
        updates = await self.call(
            self.names.handlers["sign_up"],
            {"form": {"email": email, "password": password}},
            until=lambda u: redirected(u) or self._form_done(u),
            label="sign_up",
        )
        sent = self.timings[-1].sent
        busy = next((u for u in updates if u.value(self.names.auth_form, "busy") is True), None)
        if busy is not None:  # "Creating your account…": the queue is visible from here on
            self.timings.append(Timing("sign_up busy shown", busy.received - sent, sent))
        updates = await self.follow(updates)
        if code_for is None or self.path.rstrip("/") != "/verify-email":
            return updates
        code = await asyncio.to_thread(code_for, email)
        return await self.follow(
            await self.call(
                self.names.handlers["submit_code"],
                {"form": {"otp": code}},
                until=redirected,
                label="submit_code",
            )
        )

    async def log_in(self, email: str, password: str) -> list[Update]:
        """Submit the login form; follows the redirect on success.

        Returns:
            The messages; on failure :attr:`form_error` holds the message shown.
        """
        updates = await self.call(
            self.names.handlers["log_in"],
            {"form": {"email": email, "password": password}},
            until=lambda u: redirected(u) or self._form_done(u),
            label="log_in",
        )
        return await self.follow(updates)

    async def log_out(self) -> list[Update]:
        """Log out (every session of the user ends); follows the redirect to the login."""
        updates = await self.call(self.names.handlers["log_out"], until=redirected)
        return await self.follow(updates)

    async def set_answer(self, name: str, value: str) -> None:
        """Draft one field of the open step (as typing or choosing in the form does)."""
        await self.call(
            self.names.handlers["set_field"],
            {"name": name, "value": value},
            until=changed(self.names.answers, "values"),
            label="set_field",
        )

    async def toggle_interest(self, topic: str) -> None:
        """Click a topic chip."""
        await self.call(
            self.names.handlers["toggle_choice"],
            {"name": "interests", "option": topic},
            until=changed(self.names.answers, "selections"),
            label="toggle_choice",
        )

    async def submit(self, handler: str = "submit") -> list[Update]:
        """Press Next (``submit``) or Finish (``finish_onboarding``); follows the redirect."""
        updates = await self.call(self.names.handlers[handler], until=redirected, label=handler)
        return await self.follow(updates)

    async def journey(
        self, email: str, password: str, code_for: CodeFor, think: float = 0.0
    ) -> None:
        """Sign up (with the mailed code), answer and submit every step, finish, land on explore.

        Args:
            email: A new account's address.
            password: Its password.
            code_for: Reads the code mailed to an address (see :meth:`sign_up`).
            think: Seconds to pause between actions (a person reading and typing).

        Raises:
            ProtocolError: If the flow does not end on ``/explore`` with a completed token.
        """

        async def pause() -> None:
            if think:
                await asyncio.sleep(think)

        await self.connect("/signup")
        await pause()
        await self.sign_up(email, password, code_for)
        self._expect_path("/onboarding/profile")
        for name, value in PROFILE:
            await pause()
            await self.set_answer(name, value)
        await self.submit()
        self._expect_path("/onboarding/interests")
        for topic in INTERESTS:
            await pause()
            await self.toggle_interest(topic)
        await self.submit()
        self._expect_path("/onboarding/preferences")
        for name, value in PREFERENCES:
            await pause()
            await self.set_answer(name, value)
        await self.submit()
        self._expect_path("/onboarding/review")
        await pause()
        await self.submit("finish_onboarding")
        self._expect_path("/explore")
        if self.claims().get("onb") != "completed":
            raise ProtocolError(f"flow ended with a token claiming {self.claims().get('onb')!r}")

    def _expect_path(self, path: str) -> None:
        if self.path.rstrip("/") != path:
            raise ProtocolError(
                f"expected {path}, the app went to {self.path} ({self.form_error!r})"
            )

    def _form_done(self, update: Update) -> bool:
        # A refused login/signup ends with busy back to false and an error in the same
        # message; a successful one sends busy=false first and the redirect after it.
        form = self.names.auth_form
        return update.value(form, "busy") is False and bool(
            update.value(form, "form_error") or update.value(form, "field_errors")
        )
