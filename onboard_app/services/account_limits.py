"""Limits on what anyone can ask of the account flows without a password check.

Anyone can ask for a mail to any address (sign up, "send again", "forgot password"), type
codes, or have a password rated by the strength meter. Each such request is counted before
any work, on the login throttle's counters (:mod:`onboard_app.services.throttle`): atomic,
and shared by every worker through Redis. Counters keyed on an address count whether or
not it has an account, so a refusal says nothing about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from limits import RateLimitItem, RateLimitItemPerSecond

from onboard_app.services.throttle import Counters, Slot, make_throttle
from onboard_app.settings import Settings, get_settings

#: Mails one address gets on visitors' requests (sign-up, "send again", reset).
MAILS_PER_RECIPIENT: Final = RateLimitItemPerSecond(5, 900)
#: Password reset requests from one client address.
RESETS_PER_CLIENT: Final = RateLimitItemPerSecond(10, 900)
#: Codes typed for one address (on top of the 5 tries each link allows).
CODES_PER_RECIPIENT: Final = RateLimitItemPerSecond(10, 3600)
#: Passwords the strength meter rates for one client address (typing sends a few a second).
RATINGS_PER_CLIENT: Final = RateLimitItemPerSecond(120, 60)

MAIL_RECIPIENT: Final = "mail-recipient"
RESET_CLIENT: Final = "reset-client"
CODE_RECIPIENT: Final = "code-recipient"
RATING_CLIENT: Final = "rating-client"


@dataclass(frozen=True)
class AccountLimits:
    """The counters of mails, resets, typed codes and strength ratings.

    Attributes:
        counters: The shared counters (the login throttle's).
        mails_per_recipient: Mails per recipient address.
        resets_per_client: Reset requests per client address.
        codes_per_recipient: Typed codes per address.
        ratings_per_client: Strength meter ratings per client address.
    """

    counters: Counters
    mails_per_recipient: RateLimitItem = MAILS_PER_RECIPIENT
    resets_per_client: RateLimitItem = RESETS_PER_CLIENT
    codes_per_recipient: RateLimitItem = CODES_PER_RECIPIENT
    ratings_per_client: RateLimitItem = RATINGS_PER_CLIENT

    def recipient(self, email: str) -> Slot:
        """The counter of mails to one (normalised) address."""
        return (self.mails_per_recipient, MAIL_RECIPIENT, email)

    def reset_client(self, client: str) -> Slot:
        """The counter of reset requests from one client address."""
        return (self.resets_per_client, RESET_CLIENT, client)

    def code(self, email: str) -> Slot:
        """The counter of codes typed for one (normalised) address."""
        return (self.codes_per_recipient, CODE_RECIPIENT, email)

    def rating(self, client: str) -> Slot:
        """The counter of strength ratings for one client address."""
        return (self.ratings_per_client, RATING_CLIENT, client)


def make_account_limits(settings: Settings | None = None) -> AccountLimits:
    """The limits on the app's shared counters (Redis when configured).

    Args:
        settings: The settings; the process-wide ones by default.

    Returns:
        The limits.
    """
    return AccountLimits(make_throttle(settings or get_settings()).counters)
