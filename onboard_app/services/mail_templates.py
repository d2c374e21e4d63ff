"""The mails Onboard sends, each written once as blocks that render to plain text and to HTML.

Every builder returns a :class:`~onboard_app.services.mail.Mail` for :func:`mail.send`. Links
are built by the caller (``routes.py`` spells every URL) and must be absolute http(s) URLs;
every value put into the HTML body is escaped, so an address or a name cannot add markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from onboard_app.services.email_links import TTL, LinkPurpose
from onboard_app.services.mail import Mail, MailKind

APP_NAME: Final = "Onboard"
SIGN_OFF: Final = f"The {APP_NAME} team"

_FONT: Final = "font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
_BUTTON: Final = (
    "display:inline-block;padding:12px 20px;border-radius:6px;background:#3e63dd;"
    "color:#ffffff;text-decoration:none;font-weight:600"
)
_CODE: Final = "font-family:Menlo,Consolas,monospace;font-size:28px;letter-spacing:4px;margin:8px 0"


@dataclass(frozen=True)
class _Button:
    label: str
    url: str


@dataclass(frozen=True)
class _Code:
    code: str


_Block = str | _Button | _Code


def verify_email(
    to: str, link: str, code: str, *, valid_for: timedelta = TTL[LinkPurpose.VERIFY_EMAIL]
) -> Mail:
    """The mail that confirms a new account's address.

    Args:
        to: The address to confirm.
        link: The one-time confirmation link.
        code: The 6-digit code for the same screen.
        valid_for: How long the link and code work.

    Returns:
        The mail.
    """
    return _mail(
        MailKind.VERIFY_EMAIL,
        to,
        "Confirm your email address",
        [
            f"Welcome to {APP_NAME}! Confirm that this is your email address to finish signing up.",
            _Button("Confirm my email address", link),
            "Or type this code on the sign-up screen:",
            _Code(code),
            f"The link and the code work once, for {_duration(valid_for)}.",
            f"If you did not sign up for {APP_NAME}, ignore this email: nothing happens "
            "without this confirmation.",
        ],
        link=link,
    )


def signup_attempt(to: str, login_link: str, reset_link: str) -> Mail:
    """The mail to the owner of an address someone tried to sign up with again.

    Args:
        to: The registered address.
        login_link: The login page.
        reset_link: The "forgot password" page.

    Returns:
        The mail.
    """
    return _mail(
        MailKind.SIGNUP_ATTEMPT,
        to,
        "Someone tried to sign up with your email address",
        [
            f"Someone, perhaps you, tried to create a {APP_NAME} account with this email "
            "address. You already have an account, so no new one was created.",
            _Button("Log in", login_link),
            "Forgot your password? Choose a new one:",
            _Button("Reset my password", reset_link),
            "If it wasn't you, ignore this email: your account has not changed.",
        ],
        link=login_link,
    )


def password_reset(
    to: str, link: str, *, valid_for: timedelta = TTL[LinkPurpose.RESET_PASSWORD]
) -> Mail:
    """The mail with a password reset link.

    Args:
        to: The account's address.
        link: The one-time reset link.
        valid_for: How long the link works.

    Returns:
        The mail.
    """
    return _mail(
        MailKind.PASSWORD_RESET,
        to,
        "Reset your password",
        [
            f"Someone, hopefully you, asked to reset the password of your {APP_NAME} account.",
            _Button("Choose a new password", link),
            f"The link works once, for {_duration(valid_for)}. Choosing a new password signs "
            "you out on every other device.",
            "If you didn't ask for this, ignore this email: your password stays the same.",
        ],
        link=link,
    )


def email_change_verify(
    to: str, link: str, code: str, *, valid_for: timedelta = TTL[LinkPurpose.CHANGE_EMAIL]
) -> Mail:
    """The mail to the new address of an email change.

    Args:
        to: The new address.
        link: The one-time confirmation link.
        code: The 6-digit code for the settings screen.
        valid_for: How long the link and code work.

    Returns:
        The mail.
    """
    return _mail(
        MailKind.EMAIL_CHANGE_VERIFY,
        to,
        "Confirm your new email address",
        [
            f"You asked to use this address for your {APP_NAME} account. Confirm it to make "
            "the change.",
            _Button("Confirm my new address", link),
            "Or type this code in your account settings:",
            _Code(code),
            f"The link and the code work once, for {_duration(valid_for)}. Until then your "
            "account keeps its current address.",
            "If you didn't ask for this, ignore this email.",
        ],
        link=link,
    )


def email_change_notice(
    to: str,
    new_email: str,
    reset_link: str,
    *,
    valid_for: timedelta = TTL[LinkPurpose.CHANGE_EMAIL],
) -> Mail:
    """The mail to the old address of an email change.

    Args:
        to: The current (old) address.
        new_email: The address the account is moving to.
        reset_link: A one-time password reset link for this address, for an owner who
            did not ask (it works even after the change is confirmed).
        valid_for: How long the reset link works.

    Returns:
        The mail.
    """
    return _mail(
        MailKind.EMAIL_CHANGE_NOTICE,
        to,
        "Your email address is being changed",
        [
            f"Someone signed in to your {APP_NAME} account asked to change its email address "
            f"to {new_email}. The change happens once that address is confirmed.",
            "If this was you, there is nothing to do.",
            "If it wasn't, choose a new password now: that stops the change if it is not "
            "confirmed yet, and signs everyone else out.",
            _Button("Choose a new password", reset_link),
            f"The link works once, for {_duration(valid_for)}.",
        ],
        link=reset_link,
    )


def email_change_attempt(to: str, login_link: str, reset_link: str) -> Mail:
    """The mail to the owner of an address someone asked to move another account to.

    Args:
        to: The registered address.
        login_link: The login page.
        reset_link: The "forgot password" page.

    Returns:
        The mail.
    """
    return _mail(
        MailKind.EMAIL_CHANGE_ATTEMPT,
        to,
        "Someone tried to use your email address",
        [
            f"Someone signed in to another {APP_NAME} account asked to change its email "
            "address to this one. This address already belongs to your account, so nothing "
            "was changed.",
            "If that was you, log in to the account that uses this address instead:",
            _Button("Log in", login_link),
            "Forgot your password? Choose a new one:",
            _Button("Reset my password", reset_link),
            "If it wasn't you, ignore this email: your account has not changed.",
        ],
        link=login_link,
    )


def account_deleted(to: str) -> Mail:
    """The mail confirming that an account is gone.

    Args:
        to: The deleted account's address.

    Returns:
        The mail.
    """
    return _mail(
        MailKind.ACCOUNT_DELETED,
        to,
        "Your account has been deleted",
        [
            f"Your {APP_NAME} account has been deleted, as you asked, with everything in it: "
            "your answers, your sessions and any pending links.",
            "You are welcome to sign up again at any time.",
        ],
    )


def password_changed(to: str, reset_link: str) -> Mail:
    """The mail telling the owner that the password was changed.

    Args:
        to: The account's address.
        reset_link: The "forgot password" page, for an owner who did not change it.

    Returns:
        The mail.
    """
    return _mail(
        MailKind.PASSWORD_CHANGED,
        to,
        "Your password was changed",
        [
            f"The password of your {APP_NAME} account was just changed, and every other "
            "device was signed out.",
            "If that was you, there is nothing to do.",
            "If it wasn't, reset your password now:",
            _Button("Reset my password", reset_link),
        ],
        link=reset_link,
    )


#: A change to how the account signs in, which its owner is told of.
SecurityChange = Literal["two_factor_on", "two_factor_off", "passkey_added", "passkey_removed"]
#: What changed, for :func:`security_notice`: its subject and the sentence that says it.
SECURITY_CHANGES: Final[dict[SecurityChange, tuple[str, str]]] = {
    "two_factor_on": (
        "Two-factor authentication was turned on",
        f"Two-factor authentication was just turned on for your {APP_NAME} account: signing "
        "in now asks for a code from your authenticator app after your password.",
    ),
    "two_factor_off": (
        "Two-factor authentication was turned off",
        f"Two-factor authentication was just turned off for your {APP_NAME} account: signing "
        "in now asks for your password only.",
    ),
    "passkey_added": (
        "A passkey was added to your account",
        f"A passkey was just added to your {APP_NAME} account: it signs in without a password.",
    ),
    "passkey_removed": (
        "A passkey was removed from your account",
        f"A passkey was just removed from your {APP_NAME} account: it no longer signs you in.",
    ),
}


def security_notice(to: str, change: SecurityChange, reset_link: str) -> Mail:
    """The mail telling the owner that a way of signing in changed.

    Args:
        to: The account's address.
        change: A key of :data:`SECURITY_CHANGES`.
        reset_link: The "forgot password" page, for an owner who did not make the change.

    Returns:
        The mail.
    """
    subject, sentence = SECURITY_CHANGES[change]
    return _mail(
        MailKind.SECURITY_NOTICE,
        to,
        subject,
        [
            sentence,
            "If that was you, there is nothing to do.",
            "If it wasn't, reset your password now: that signs out every other device.",
            _Button("Reset my password", reset_link),
        ],
        link=reset_link,
    )


def _mail(
    kind: MailKind, to: str, subject: str, blocks: list[_Block], *, link: str | None = None
) -> Mail:
    for block in blocks:
        if isinstance(block, _Button) and not block.url.startswith(("https://", "http://")):
            raise ValueError("mail links must be absolute http(s) URLs")
    return Mail(kind, to, subject, _text(blocks), _html(subject, blocks), link)


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes >= 60 and minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _spaced(code: str) -> str:
    return f"{code[:3]} {code[3:]}" if len(code) == 6 else code


def _text(blocks: list[_Block]) -> str:
    lines = ["Hello,"]
    for block in blocks:
        if isinstance(block, _Button):
            lines.append(f"{block.label}:\n{block.url}")
        elif isinstance(block, _Code):
            lines.append(f"    {_spaced(block.code)}")
        else:
            lines.append(block)
    lines.append(SIGN_OFF)
    return "\n\n".join(lines) + "\n"


def _html(subject: str, blocks: list[_Block]) -> str:
    esc = html.escape
    parts = ["<p>Hello,</p>"]
    for block in blocks:
        if isinstance(block, _Button):
            parts.append(
                f'<p><a href="{esc(block.url)}" style="{_BUTTON}">{esc(block.label)}</a></p>'
                f'<p style="font-size:13px;color:#60646c">Or open this link: '
                f'<a href="{esc(block.url)}" style="color:#3e63dd;word-break:break-all">'
                f"{esc(block.url)}</a></p>"
            )
        elif isinstance(block, _Code):
            parts.append(f'<p style="{_CODE}"><strong>{esc(_spaced(block.code))}</strong></p>')
        else:
            parts.append(f"<p>{esc(block)}</p>")
    parts.append(f"<p>{esc(SIGN_OFF)}</p>")
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(subject)}</title></head>\n"
        f'<body style="margin:0;padding:24px;background:#f9f9fb;color:#1c2024;{_FONT}">\n'
        '<div style="max-width:520px;margin:0 auto;padding:24px;background:#ffffff;'
        f'border-radius:8px;line-height:1.5">\n{body}\n</div>\n</body>\n</html>\n'
    )
