"""Route constants and builders: the only place URLs are spelled."""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qs, quote, urlsplit

from onboard_app.services.onboarding import COMPLETED, Step, wizard_steps

HOME: Final = "/"
LOGIN: Final = "/login"
SIGNUP: Final = "/signup"
EXPLORE: Final = "/explore"
SETTINGS: Final = "/settings"
ONBOARDING_PREFIX: Final = "/onboarding"
OAUTH_START_PREFIX: Final = "/auth/login"
OAUTH_CALLBACK_PREFIX: Final = "/auth/callback"
PROVIDERS: Final = ("github", "oidc")
#: "Check your email" after sign-up, and where a verification link lands.
VERIFY_EMAIL: Final = "/verify-email"
FORGOT_PASSWORD: Final = "/forgot-password"  # noqa: S105 (a path, not a password)
#: Where a password reset link lands.
RESET_PASSWORD: Final = "/reset-password"  # noqa: S105 (a path, not a password)
#: Where the link confirming a new email address lands (account settings).
CONFIRM_EMAIL: Final = "/confirm-email"
#: Where a tab lands once its account is deleted.
ACCOUNT_DELETED: Final = "/account-deleted"
#: The development mailbox (registered in development only).
DEV_MAILBOX: Final = "/dev/mail"
#: The onboarding insights (admins only).
ADMIN_ONBOARDING: Final = "/admin/onboarding"
#: The fragment key of a mailed link's token: a fragment never reaches a server, a proxy
#: or a ``Referer``.
LINK_TOKEN: Final = "token"  # noqa: S105 (a key name, not a secret)


def onboarding(step: Step) -> str:
    """The wizard page of a step (``/explore`` for a completed user)."""
    return EXPLORE if step == COMPLETED else f"{ONBOARDING_PREFIX}/{step}"


def oauth_callback(provider: str) -> str:
    """The callback page of a provider."""
    return f"{OAUTH_CALLBACK_PREFIX}/{provider}"


def onboarding_pages() -> tuple[str, ...]:
    """Every wizard page, in order (read at call time from the step spec)."""
    return tuple(onboarding(step) for step in wizard_steps())


APP_PAGES: Final = (EXPLORE, SETTINGS)


def next_allowed() -> frozenset[str]:
    """Where ``next=`` may point after login: known pages only."""
    return frozenset((*APP_PAGES, *onboarding_pages()))


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
    return value if value in next_allowed() else None


def login_with_next(path: str) -> str:
    """The login page, remembering where the user wanted to go (if that is allowed)."""
    target = safe_next(path)
    return f"{LOGIN}?next={quote(target, safe='/')}" if target else LOGIN


def absolute(public_url: str, path: str) -> str:
    """An absolute URL of a page, for a mail."""
    return public_url.rstrip("/") + path


def emailed_link(public_url: str, path: str, token: str) -> str:
    """A one-time link for a mail: the page, with the token in the fragment."""
    return f"{absolute(public_url, path)}#{LINK_TOKEN}={quote(token, safe='')}"


def link_token(fragment: object) -> str | None:
    """The token of a mailed link, from the URL fragment the page was opened with."""
    if not isinstance(fragment, str) or not fragment or len(fragment) > 512:
        return None
    values = parse_qs(fragment).get(LINK_TOKEN)
    return values[0] if values and len(values) == 1 else None
