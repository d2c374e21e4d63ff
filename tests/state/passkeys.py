"""Passkey ceremonies through the real handlers, with a software authenticator as the browser."""

from __future__ import annotations

import json
from typing import Any

from reflex_base.event import EventSpec

# ``state/auth.sign_in`` imports the two-factor state lazily; a state first imported after a
# tab's tree was built is missing from that tree, so it is imported here, before any tab.
import onboard_app.state.two_factor  # noqa: F401
from onboard_app.state.passkeys import PasskeyLoginState, PasskeySettingsState
from tests.fakes.authenticator import SoftAuthenticator
from tests.state.harness import Client

ORIGIN = "http://localhost:3000"  # the default ONBOARD_PUBLIC_URL of the in-process tests
PASSWORD = "correct horse battery staple"


def ceremony_of(events: list[Any]) -> tuple[str, dict[str, Any]] | None:
    """The ceremony a handler asked the browser for: its kind and its options, if any."""
    for event in events:
        if not isinstance(event, EventSpec):
            continue
        for var, value in event.args:
            code = getattr(value, "_var_value", value)
            if str(var) == "javascript_code" and isinstance(code, str) and "credentials" in code:
                call = code.rpartition("})(")[2].removesuffix(")")
                kind, _, options = call.partition(", ")
                return json.loads(kind), json.loads(options)
    return None


async def begin_registration(tab: Client, password: str = PASSWORD) -> dict[str, Any]:
    """Settings' "Add a passkey", confirmed with the password when asked: the options."""
    tab.navigate("/settings")
    events = await tab.call(PasskeySettingsState.begin_add)
    if ceremony_of(events) is None:
        events = await tab.call(PasskeySettingsState.confirm_password, {"password": password})
    started = ceremony_of(events)
    assert started is not None and started[0] == "create", events
    return started[1]


async def add_passkey(tab: Client, device: SoftAuthenticator) -> list[Any]:
    """Add a passkey made by ``device`` in settings; the events of the answer."""
    credential = device.create(await begin_registration(tab), ORIGIN)
    return await tab.call(PasskeySettingsState.finish_add, {"credential": credential})


async def sign_in_with(
    tab: Client, device: SoftAuthenticator, *, origin: str = ORIGIN, path: str = "/login"
) -> list[Any]:
    """ "Sign in with a passkey" on the login page; the events of the answer."""
    tab.navigate(path)
    started = ceremony_of(await tab.call(PasskeyLoginState.start_sign_in))
    assert started is not None and started[0] == "get"
    credential = device.get(started[1], origin)
    return await tab.call(PasskeyLoginState.finish_sign_in, {"credential": credential})
