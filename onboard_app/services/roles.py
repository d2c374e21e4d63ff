"""Roles: who is an admin, decided from the user row and the settings, never from a client.

Pure: no database, no Reflex. An account is an admin when its address is verified and
either an operator granted the role (``python -m onboard_app.cli grant-admin``, stored in
``users.role``) or the address is listed in ``ONBOARD_ADMIN_EMAILS``. The session layer
computes the role on every check of the row, so a grant or a revocation takes effect at
the user's next event, and the token's ``role`` claim is re-minted from it.
"""

from __future__ import annotations

from typing import Final

from onboard_app.settings import Settings

MEMBER: Final = "member"
ADMIN: Final = "admin"
ROLES: Final = (MEMBER, ADMIN)


def effective_role(
    granted: str | None, email: str | None, verified: bool, settings: Settings
) -> str:
    """The role an account has now.

    Args:
        granted: The stored role (``users.role``).
        email: The account's normalised address, if any.
        verified: Whether the address is confirmed (or came verified from a provider).
        settings: Where ``ONBOARD_ADMIN_EMAILS`` was read.

    Returns:
        :data:`ADMIN` or :data:`MEMBER`.
    """
    if not verified or not email:
        return MEMBER
    if granted == ADMIN or email in settings.admin_emails:
        return ADMIN
    return MEMBER
