"""The sessions listed on ``/settings`` ("Where you're signed in"), and signing them out.

Every handler requires a verified session and acts on that session's user only: the id a
"Sign out" button sends is looked up among the caller's own sessions
(:func:`~onboard_app.services.sessions.end_device_session`), so an id of another user's
session, or a made-up one, ends nothing and answers exactly as an id that is already gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import reflex as rx
from sqlalchemy.exc import SQLAlchemyError

from onboard_app.services.access import SIGNED_IN
from onboard_app.services.audit import audit
from onboard_app.services.sessions import (
    Authenticated,
    SignedInDevice,
    end_device_session,
    end_other_sessions,
    signed_in_devices,
)
from onboard_app.services.user_agents import PHONE, TABLET, device_label
from onboard_app.state.session import (
    OUTAGE_MESSAGE,
    Events,
    SessionUnavailable,
    requires,
    verified_session,
)

log = logging.getLogger("onboard.devices")

SIGNED_OUT_EVERYWHERE_ELSE: Final = "Signed out everywhere else."
_ICONS: Final = {PHONE: "smartphone", TABLET: "tablet"}


@dataclass
class DeviceRow:
    """One session as the page draws it.

    Attributes:
        id: The session id ("Sign out" sends it back).
        label: ``Chrome on Linux``.
        icon: The Lucide icon of its form factor.
        address: The client address last seen.
        activity: ``Active now`` (this device) or ``Last active 5 minutes ago``.
        signed_in: ``Signed in 2 days ago``.
        seen_at: When it was last active, ISO 8601 (the ``<time>`` element's value).
        current: The session of this browser.
        sign_out_label: The accessible name of its "Sign out" button.
    """

    id: str
    label: str
    icon: str
    address: str
    activity: str
    signed_in: str
    seen_at: str
    current: bool
    sign_out_label: str


def ago(seconds: float) -> str:
    """How long ago, as people say it: ``just now``, ``5 minutes ago``, ``3 days ago``."""
    whole = max(0, int(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if whole >= size:
            count = whole // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def _row(device: SignedInDevice, now: float) -> DeviceRow:
    label = device_label(device.browser, device.system, device.device)
    return DeviceRow(
        id=device.id,
        label=label,
        icon=_ICONS.get(device.form_factor, "laptop"),
        address=device.client_address or "Unknown address",
        activity="Active now"
        if device.current
        else f"Last active {ago(now - device.last_seen_at)}",
        signed_in=f"Signed in {ago(now - device.created_at)}",
        seen_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(device.last_seen_at)),
        current=device.current,
        sign_out_label=f"Sign out {label}",
    )


class DevicesState(rx.State):
    """The list of the user's sessions and the busy flag of a sign-out in flight."""

    devices: list[DeviceRow] = []
    loaded: bool = False
    #: The session being signed out, or ``"*"`` for "Sign out everywhere else".
    busy: str = ""
    error: str = ""

    @rx.var
    def has_others(self) -> bool:
        """Whether any session but this one is listed."""
        return any(not device.current for device in self.devices)

    def _session(self) -> Authenticated | None:
        """The caller's verified session; ``None`` (with the outage shown) when unknown."""
        try:
            return verified_session()
        except SessionUnavailable:
            self.error = OUTAGE_MESSAGE
            return None

    async def _refresh(self, session: Authenticated) -> None:
        try:
            found = await asyncio.to_thread(signed_in_devices, session)
        except SQLAlchemyError:
            log.exception("sessions of user %s not listed: database error", session.user.id)
            self.error = OUTAGE_MESSAGE
            return
        now = time.time()
        self.devices = [_row(device, now) for device in found]
        self.error = ""
        self.loaded = True

    @requires(SIGNED_IN)
    async def load(self) -> None:
        """When the list appears: the caller's live sessions, this one first."""
        session = self._session()
        if session is not None:
            await self._refresh(session)

    @requires(SIGNED_IN)
    async def sign_out_device(self, session_id: str) -> AsyncIterator[Events]:
        """End one of the caller's other sessions: its tab goes to the login page at its next event.

        Args:
            session_id: A session id from the list (any value: only the caller's own
                sessions can be ended; anything else ends nothing).
        """
        session = self._session()
        if session is None or self.busy:
            return
        listed = next((d for d in self.devices if d.id == session_id), None)
        # The flag names a row of the list (never echoes what the client sent).
        self.busy = listed.id if listed is not None else "?"
        yield None
        try:
            ended = await asyncio.to_thread(end_device_session, session, session_id)
        except SQLAlchemyError:
            log.exception("session of user %s not ended: database error", session.user.id)
            self.error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = ""
        await self._refresh(session)
        if ended:
            audit("logout", user_id=session.user.id, scope="other", client=self._client())
            yield rx.toast.success(f"Signed out {listed.label}." if listed else "Signed out.")

    @requires(SIGNED_IN)
    async def sign_out_everywhere_else(self) -> AsyncIterator[Events]:
        """End every session of the caller's but this one."""
        session = self._session()
        if session is None or self.busy:
            return
        self.busy = "*"
        yield None
        try:
            ended = await asyncio.to_thread(
                end_other_sessions, session.user.id, keep=session.session_id
            )
        except SQLAlchemyError:
            log.exception("sessions of user %s not ended: database error", session.user.id)
            self.error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = ""
        await self._refresh(session)
        audit(
            "logout",
            user_id=session.user.id,
            scope="everywhere_else",
            ended=ended,
            client=self._client(),
        )
        yield rx.toast.success(SIGNED_OUT_EVERYWHERE_ELSE)

    def _client(self) -> str:
        return self.router.session.client_ip or "unknown"
