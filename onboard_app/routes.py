"""Route constants and builders: the only place URLs are spelled."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, urlsplit

from onboard_app.services.onboarding import WIZARD_STEPS, Step

HOME: Final = "/"
LOGIN: Final = "/login"
SIGNUP: Final = "/signup"
EXPLORE: Final = "/explore"
SETTINGS: Final = "/settings"
ONBOARDING_PREFIX: Final = "/onboarding"
OAUTH_START_PREFIX: Final = "/auth/login"
OAUTH_CALLBACK_PREFIX: Final = "/auth/callback"
PROVIDERS: Final = ("github", "oidc")


def onboarding(step: Step) -> str:
    """The wizard page of a step (``/explore`` for a completed user)."""
    return EXPLORE if step is Step.COMPLETED else f"{ONBOARDING_PREFIX}/{step.value}"


def oauth_callback(provider: str) -> str:
    """The callback page of a provider."""
    return f"{OAUTH_CALLBACK_PREFIX}/{provider}"


ONBOARDING_PAGES: Final = tuple(onboarding(step) for step in WIZARD_STEPS)
APP_PAGES: Final = (EXPLORE, SETTINGS)
#: Where ``next=`` may point after login: known pages only.
NEXT_ALLOWED: Final = frozenset((*APP_PAGES, *ONBOARDING_PAGES))


def safe_next(value: object) -> str | None:
    """A ``next=`` target if it is a known relative route, else ``None``.

    Absolute URLs, scheme-relative ``//host``, backslashes, encoded characters, control
    characters and anything not on the allow-list are refused.

    Args:
        value: The raw ``next`` query parameter.

    Returns:
        The route, or ``None``.
    """
    if not isinstance(value, str) or len(value) > 200:
        return None
    if any(ch in value for ch in "\\%\r\n\t\x00 ") or not value.startswith("/"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.query or parts.fragment:
        return None
    return value if value in NEXT_ALLOWED else None


def login_with_next(path: str) -> str:
    """The login page, remembering where the user wanted to go (if that is allowed)."""
    target = safe_next(path)
    return f"{LOGIN}?next={quote(target, safe='/')}" if target else LOGIN
