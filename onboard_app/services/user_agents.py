"""What a person would call the device a session signed in from: "Chrome on Linux".

The parsing is ua-parser's (uap-core's maintained rules, the same ones many analytics
tools use); this module only turns its answer into the few short words the settings page
shows, and keeps client text in bounds: the header is cut before it is parsed, and every
word that comes out is printable ASCII of bounded length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import ua_parser

#: Enough for every real browser's header; longer ones are cut before parsing (the rules
#: are regular expressions, and the cost grows with the text).
MAX_USER_AGENT: Final = 512
DESKTOP, PHONE, TABLET, UNKNOWN = "desktop", "phone", "tablet", "unknown"

_BROWSER_NAMES: Final = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Android WebView",
    "HeadlessChrome": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
_SYSTEM_NAMES: Final = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
_GENERIC_DEVICES: Final = frozenset({"Other", "Generic Smartphone", "Generic Tablet", "Spider"})
#: A ``User-Agent`` is ASCII (RFC 9110); anything else (controls, bidi overrides) is dropped.
_NOT_PRINTABLE_ASCII: Final = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class DeviceInfo:
    """The parts of a user agent the settings page shows.

    Attributes:
        browser: ``Chrome``, ``Safari``... or ``""`` when unknown.
        system: ``Linux``, ``macOS``, ``iOS``, ``Android``... or ``""``.
        device: A phone or tablet model (``iPhone``, ``Pixel 8``), else ``""``.
        form_factor: :data:`DESKTOP`, :data:`PHONE`, :data:`TABLET` or :data:`UNKNOWN`.
    """

    browser: str = ""
    system: str = ""
    device: str = ""
    form_factor: str = UNKNOWN

    @property
    def label(self) -> str:
        """``Chrome on Linux``, ``Safari on iPhone``, ``Unknown browser``..."""
        return device_label(self.browser, self.system, self.device)


def _word(value: str | None, limit: int) -> str:
    """Client-derived text, printable ASCII and short (it is stored and shown)."""
    if not value:
        return ""
    return " ".join(_NOT_PRINTABLE_ASCII.sub("", value).split())[:limit]


def parse_user_agent(header: object) -> DeviceInfo:
    """Browser, system and device of a ``User-Agent`` header (any value a client sent).

    Args:
        header: The header's value; anything that is not text is unknown.

    Returns:
        What could be told; unknown parts are empty.
    """
    if not isinstance(header, str) or not header.strip():
        return DeviceInfo()
    text = header[:MAX_USER_AGENT]
    parsed = ua_parser.parse(text)
    agent, system, device = parsed.user_agent, parsed.os, parsed.device
    browser = _BROWSER_NAMES.get(agent.family, agent.family) if agent else ""
    browser = "" if browser == "Other" else browser
    system_name = _SYSTEM_NAMES.get(system.family, system.family) if system else ""
    system_name = "" if system_name == "Other" else system_name
    model = device.family if device and device.family not in _GENERIC_DEVICES else ""
    if model in ("Mac", system_name):
        model = ""  # "Firefox on macOS", not "Firefox on Mac (macOS)"
    return DeviceInfo(
        browser=_word(browser, 40),
        system=_word(system_name, 40),
        device=_word(model, 60),
        form_factor=_form_factor(text, system_name, model),
    )


def _form_factor(text: str, system: str, model: str) -> str:
    if "iPad" in text or "Tablet" in text or (system == "Android" and "Mobile" not in text):
        return TABLET
    if "Mobi" in text or "iPhone" in text or system in ("iOS", "Android"):
        return PHONE
    if system in ("Linux", "macOS", "Windows", "ChromeOS", "Ubuntu", "Fedora", "FreeBSD"):
        return DESKTOP
    return PHONE if model else UNKNOWN


def device_label(browser: str, system: str, device: str = "") -> str:
    """How a session is named on the page and in its buttons' names.

    Args:
        browser: The browser, or ``""``.
        system: The operating system, or ``""``.
        device: A phone or tablet model, or ``""`` (it names the place better than the
            system does).

    Returns:
        ``Chrome on Linux``, ``Safari on iPhone``, ``Firefox``, ``Unknown browser on
        Windows``, or ``Unknown device``.
    """
    where = device or system
    if browser and where:
        return f"{browser} on {where}"
    if browser:
        return browser
    return f"Unknown browser on {where}" if where else "Unknown device"
