"""The mails of the account flows.

Each builder issues what the mail needs (a one-time link and code, see
:mod:`onboard_app.services.email_links`), spells its links through ``routes.py`` and returns
the :class:`~onboard_app.services.mail.Mail` for :func:`~onboard_app.services.mail.send_async`.
Mailed tokens travel in the link's fragment, so they never reach a server or proxy log.
Blocking (database): call these off the event loop.
"""

from __future__ import annotations

from onboard_app import routes
from onboard_app.services import email_links, mail_templates
from onboard_app.services import mail as mail_service
from onboard_app.services.email_links import LinkPurpose
from onboard_app.services.mail import Mail
from onboard_app.services.mail_templates import SecurityChange
from onboard_app.settings import Settings, get_settings


def verification(
    user_id: int, email: str, settings: Settings | None = None, url: str | None = None
) -> Mail:
    """Issue a verification link and code (replacing earlier ones) and build its mail.

    Args:
        user_id: The account.
        email: Its address.
        settings: The settings (public URL); the process-wide ones by default.
        url: Database URL.

    Returns:
        The mail.
    """
    settings = settings or get_settings()
    issued = email_links.issue(user_id, LinkPurpose.VERIFY_EMAIL, url=url)
    link = routes.emailed_link(settings.public_url, routes.VERIFY_EMAIL, issued.token)
    return mail_templates.verify_email(email, link, issued.code)


def signup_attempt(email: str, settings: Settings | None = None) -> Mail:
    """The mail to the owner of an address someone signed up with again.

    Args:
        email: The registered address.
        settings: The settings (public URL); the process-wide ones by default.

    Returns:
        The mail, linking to the login and "forgot password" pages.
    """
    public = (settings or get_settings()).public_url
    return mail_templates.signup_attempt(
        email,
        routes.absolute(public, routes.LOGIN),
        routes.absolute(public, routes.FORGOT_PASSWORD),
    )


def password_reset(
    user_id: int, email: str, settings: Settings | None = None, url: str | None = None
) -> Mail:
    """Issue a password reset link (replacing an earlier one) and build its mail.

    Args:
        user_id: The account.
        email: Its address.
        settings: The settings (public URL); the process-wide ones by default.
        url: Database URL.

    Returns:
        The mail.
    """
    settings = settings or get_settings()
    issued = email_links.issue(user_id, LinkPurpose.RESET_PASSWORD, url=url)
    link = routes.emailed_link(settings.public_url, routes.RESET_PASSWORD, issued.token)
    return mail_templates.password_reset(email, link)


def password_changed(email: str, settings: Settings | None = None) -> Mail:
    """The notice that the password was changed (and every other device signed out).

    Args:
        email: The account's address.
        settings: The settings (public URL); the process-wide ones by default.

    Returns:
        The mail, linking to the "forgot password" page for an owner who did not do it.
    """
    return mail_templates.password_changed(email, _forgot_password(settings))


def security_notice(email: str, change: SecurityChange, settings: Settings | None = None) -> Mail:
    """The notice that a way of signing in changed (two-factor on or off, a passkey).

    Args:
        email: The account's address.
        change: A key of :data:`mail_templates.SECURITY_CHANGES`.
        settings: The settings (public URL); the process-wide ones by default.

    Returns:
        The mail, linking to the "forgot password" page for an owner who did not do it.
    """
    return mail_templates.security_notice(email, change, _forgot_password(settings))


async def send_security_notice(email: str | None, change: SecurityChange) -> None:
    """Mail the owner that a way of signing in changed (no address: nothing to send).

    Args:
        email: The account's address, if it has one.
        change: A key of :data:`mail_templates.SECURITY_CHANGES`.
    """
    if email:
        await mail_service.send_async(security_notice(email, change))


def _forgot_password(settings: Settings | None) -> str:
    """The "forgot password" page's address, for an owner who did not make a change."""
    return routes.absolute((settings or get_settings()).public_url, routes.FORGOT_PASSWORD)


def email_change(
    user_id: int,
    old_email: str,
    new_email: str,
    *,
    taken: bool,
    settings: Settings | None = None,
    url: str | None = None,
) -> tuple[Mail, Mail]:
    """Issue an email change (replacing an earlier one) and build its two mails.

    The same is issued whether or not ``new_email`` is free: a change link (a taken
    address can never be confirmed, so its link is never mailed) and, for the old
    address, a password reset link valid as long as the change link, so an owner who did
    not ask has a way back in even after the change is confirmed.

    Args:
        user_id: The account.
        old_email: Its current address (gets the notice).
        new_email: The address asked for (normalised).
        taken: Whether another account has ``new_email`` (its owner is told instead).
        settings: The settings (public URL); the process-wide ones by default.
        url: Database URL.

    Returns:
        The mail to the new address (the confirmation, or "someone tried to use your
        address") and the notice to the old one.
    """
    settings = settings or get_settings()
    public = settings.public_url
    change = email_links.issue(user_id, LinkPurpose.CHANGE_EMAIL, new_email=new_email, url=url)
    ttl = email_links.TTL[LinkPurpose.CHANGE_EMAIL]
    reset = email_links.issue(user_id, LinkPurpose.RESET_PASSWORD, ttl, url=url)
    if taken:
        first = mail_templates.email_change_attempt(
            new_email,
            routes.absolute(public, routes.LOGIN),
            routes.absolute(public, routes.FORGOT_PASSWORD),
        )
    else:
        link = routes.emailed_link(public, routes.CONFIRM_EMAIL, change.token)
        first = mail_templates.email_change_verify(new_email, link, change.code)
    reset_link = routes.emailed_link(public, routes.RESET_PASSWORD, reset.token)
    notice = mail_templates.email_change_notice(old_email, new_email, reset_link, valid_for=ttl)
    return first, notice
