"""The mails in-process tests receive, and signing up through them.

In development mode (the default of in-process tests) every mail lands in the app's
development mailbox (``tests/conftest.py`` points it at a scratch folder). In production
mode the app sends over SMTP; :func:`mail_reaches_us` points it at the test process's
SMTP server for the duration of a block, so a helper can read what was sent there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from onboard_app import routes
from onboard_app.settings import get_settings, override_settings
from onboard_app.state.auth import SignupState, VerifyEmailState
from tests.fakes.inbox import Letter, from_dev_mailbox, from_smtp, letters_to, shared_smtp
from tests.state.harness import Client, redirects

PASSWORD = "correct horse battery staple"


def inbox() -> list[Letter]:
    """Every mail the app sent in this process so far, newest first."""
    return from_smtp(shared_smtp()) if get_settings().is_production else from_dev_mailbox()


def mails_to(address: str, kind: str | None = None) -> list[Letter]:
    """Every mail the address got, newest first (of one kind, if given)."""
    return letters_to(inbox(), address, kind)


def last_mail(address: str, kind: str | None = None) -> Letter:
    """The newest mail the address got (of one kind, if given)."""
    found = mails_to(address, kind)
    assert found, f"no {kind or ''} mail to {address}"
    return found[0]


def code_in(letter: Letter) -> str:
    """The 6-digit code of a mail, as a user would type it."""
    return letter.code


def open_link(tab: Client, letter: Letter) -> None:
    """Point the tab at a mail's one-time link (page and fragment), as the browser would."""
    parts = urlsplit(letter.link)
    tab.navigate(f"{parts.path}#{parts.fragment}")


@contextmanager
def mail_reaches_us() -> Iterator[None]:
    """In production mode, send the block's mail to the test process's SMTP server."""
    settings = get_settings()
    if not settings.is_production:
        yield
        return
    override_settings(dataclasses.replace(settings, smtp=shared_smtp().settings()))
    try:
        yield
    finally:
        override_settings(settings)


async def sign_up_and_confirm(tab: Client, email: str, password: str = PASSWORD) -> list:
    """Sign up through the handler, then type the mailed code; returns the code's events."""
    with mail_reaches_us():
        tab.navigate(routes.SIGNUP)
        events = await tab.call(SignupState.sign_up, {"email": email, "password": password})
        assert redirects(events) == [routes.VERIFY_EMAIL], events
        tab.navigate(routes.VERIFY_EMAIL)
        code = last_mail(email.strip().lower(), "verify_email").code
        return await tab.call(VerifyEmailState.submit_code, {"otp": code})
