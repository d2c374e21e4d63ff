"""What a user reads in their mail: from the SMTP fake, or from the development mailbox.

Tests that sign people up read the mail the app sent, as a user would, and take from it
the 6-digit code or the link (with its token in the fragment). Mail comes from one of:

- :func:`shared_smtp`: one in-process SMTP server (``tests/fakes/smtp.py``) for the whole
  test process; browser tests point every app they start at it (``ONBOARD_SMTP_URL``), and
  in-process tests in production mode send to it;
- :func:`from_dev_mailbox`: the app's development mailbox (in-process tests in development
  mode, with no SMTP server, write there).
"""

from __future__ import annotations

import atexit
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlsplit

from onboard_app import routes
from onboard_app.services import mail, mail_templates
from tests.fakes.smtp import SmtpFake

_CODE = re.compile(r"^[ \t]+(\d{3}) (\d{3})\s*$", re.MULTILINE)
_LINK = re.compile(r"https?://\S+")
#: Each mail kind by its subject.
KIND_OF_SUBJECT = {
    built.subject: built.kind.value
    for built in (
        mail_templates.verify_email("a@example.com", "http://x/", "000000"),
        mail_templates.signup_attempt("a@example.com", "http://x/", "http://x/"),
        mail_templates.password_reset("a@example.com", "http://x/"),
        mail_templates.password_changed("a@example.com", "http://x/"),
        mail_templates.email_change_verify("a@example.com", "http://x/", "000000"),
        mail_templates.email_change_notice("a@example.com", "b@example.com", "http://x/"),
        mail_templates.email_change_attempt("a@example.com", "http://x/", "http://x/"),
        mail_templates.account_deleted("a@example.com"),
        *(
            mail_templates.security_notice("a@example.com", change, "http://x/")
            for change in mail_templates.SECURITY_CHANGES
        ),
    )
}


@dataclass(frozen=True)
class Letter:
    """One mail as its recipient sees it.

    Attributes:
        to: The recipient.
        subject: The subject line.
        text: The plain-text body.
        html: The HTML body.
    """

    to: str
    subject: str
    text: str
    html: str

    @property
    def kind(self) -> str:
        """Which mail it is (``verify_email``, ``password_reset``...)."""
        return KIND_OF_SUBJECT.get(self.subject, "")

    @property
    def links(self) -> list[str]:
        """Every link of the plain-text body, in order."""
        return _LINK.findall(self.text)

    @property
    def link(self) -> str:
        """The mail's one-time link (the one carrying a token), else its first link."""
        links = self.links
        assert links, self.text
        return next((link for link in links if "#token=" in link), links[0])

    @property
    def token(self) -> str:
        """The token in the fragment of the one-time link."""
        token = routes.link_token(urlsplit(self.link).fragment)
        assert token, self.link
        return token

    @property
    def code(self) -> str:
        """The 6-digit code, as a user types it."""
        match = _CODE.search(self.text)
        assert match, self.text
        return match.group(1) + match.group(2)


def _letter(message: EmailMessage) -> Letter:
    def body(subtype: str) -> str:
        part = message.get_body(preferencelist=(subtype,))
        return part.get_content() if isinstance(part, EmailMessage) else ""

    return Letter(str(message["To"]), str(message["Subject"]), body("plain"), body("html"))


def from_smtp(fake: SmtpFake) -> list[Letter]:
    """Every mail the SMTP fake accepted, newest first."""
    return [_letter(message) for message in reversed(fake.messages)]


def from_dev_mailbox() -> list[Letter]:
    """Every mail of the development mailbox (of the process's settings), newest first."""
    letters = []
    for entry in mail.list_mailbox(limit=mail.MAILBOX_LIMIT):
        found = mail.read_mailbox_mail(entry.id)
        if found is not None:
            letters.append(Letter(entry.to, entry.subject, found.text, found.html))
    return letters


def letters_to(letters: list[Letter], address: str, kind: str | None = None) -> list[Letter]:
    """The letters to one address (of one kind), in the given order."""
    return [x for x in letters if x.to == address and (kind is None or x.kind == kind)]


def wait_for_letter(
    source: Callable[[], list[Letter]],
    address: str,
    kind: str | None = None,
    *,
    count: int = 1,
    timeout: float = 15.0,
) -> Letter:
    """The newest letter to ``address`` once it has ``count`` of that kind (mail is async).

    Args:
        source: Where to read (``lambda: from_smtp(fake)``).
        address: The recipient.
        kind: The mail kind.
        count: How many of them must have arrived.
        timeout: Seconds to wait.

    Returns:
        The newest one.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = letters_to(source(), address, kind)
        if len(found) >= count:
            return found[0]
        assert time.monotonic() < deadline, f"no {kind or ''} mail #{count} to {address}"
        time.sleep(0.05)


_shared: SmtpFake | None = None
_shared_lock = threading.Lock()


def shared_smtp() -> SmtpFake:
    """The test process's SMTP server (plain SMTP on 127.0.0.1), started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SmtpFake().__enter__()
            atexit.register(_shared.__exit__, None, None, None)
        return _shared
