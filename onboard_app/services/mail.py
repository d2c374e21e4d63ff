"""Outgoing mail: sent over SMTP with a timeout and one retry, or kept in a development mailbox.

:func:`send` hands a :class:`Mail` (built by :mod:`onboard_app.services.mail_templates`) to
the SMTP server of ``ONBOARD_SMTP_URL`` and says what happened as a value, never as an
exception: a server that is down, slow or refusing gives :class:`MailFailed` with a short
reason, logged without the message, its links or any credential. A transient failure (no
connection, timeout, a 4xx answer) is tried once more.

With no SMTP server in development, mail goes to the development mailbox instead: each
message is written to ``ONBOARD_MAIL_DIR`` (``.onboard/mail/``) as an ``.eml`` file plus a
line in ``index.json``, and a short line with its link is printed to the console, so a
first sign-up needs no mail setup. :func:`list_mailbox` and :func:`read_mailbox_mail` feed
the development-only page; in production they return nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import os
import re
import secrets
import smtplib
import ssl
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

from onboard_app.settings import Settings, SmtpSettings, get_settings

log = logging.getLogger("onboard.mail")

#: What to tell the user when a mail could not be sent.
MAIL_FAILED: Final = "We could not send the email just now. Please try again in a few minutes."
#: Pause before the one retry of a transient failure.
RETRY_DELAY: Final = 1.0
#: Mails the development mailbox keeps; older ones are deleted.
MAILBOX_LIMIT: Final = 200
#: Mail threads per worker: a hung SMTP server holds these, never the default executor.
MAIL_THREADS: Final = 4

_INDEX: Final = "index.json"
_LOCK: Final = ".lock"
_MAILBOX_ID: Final = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}")


class MailKind(StrEnum):
    """Which mail it is (logged, and shown in the development mailbox)."""

    VERIFY_EMAIL = "verify_email"
    SIGNUP_ATTEMPT = "signup_attempt"
    PASSWORD_RESET = "password_reset"  # noqa: S105 (a mail kind, not a password)
    EMAIL_CHANGE_VERIFY = "email_change_verify"
    EMAIL_CHANGE_NOTICE = "email_change_notice"
    EMAIL_CHANGE_ATTEMPT = "email_change_attempt"
    ACCOUNT_DELETED = "account_deleted"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a mail kind, not a password)
    SECURITY_NOTICE = "security_notice"


@dataclass(frozen=True)
class Mail:
    """One mail to one recipient, with a plain-text and an HTML body.

    Attributes:
        kind: Which mail it is.
        to: The recipient's address (one address).
        subject: The subject line.
        text: The plain-text body.
        html: The HTML body (every interpolated value escaped by the template).
        link: The mail's main link, printed by the development mailbox; never logged.
    """

    kind: MailKind
    to: str
    subject: str
    text: str = field(repr=False)
    html: str = field(repr=False)
    link: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MailSent:
    """The mail was accepted by the SMTP server, or kept in the development mailbox.

    Attributes:
        message_id: Its ``Message-ID`` header.
        via: ``smtp`` or ``mailbox``.
        mailbox_id: Its id in the development mailbox (``via == "mailbox"``).
    """

    message_id: str
    via: Literal["smtp", "mailbox"]
    mailbox_id: str | None = None


@dataclass(frozen=True)
class MailFailed:
    """The mail was not sent.

    Attributes:
        reason: Short, safe to log (no addresses, links or credentials).
        transient: Whether trying later may work (it was already retried once).
    """

    reason: str
    transient: bool


SendResult = MailSent | MailFailed


@dataclass(frozen=True)
class MailboxEntry:
    """One mail in the development mailbox, as listed.

    Attributes:
        id: Its id (also its file name without ``.eml``).
        kind: Which mail it is.
        to: The recipient.
        subject: The subject line.
        created_at: When it was written (ISO 8601, UTC).
        link: Its main link, if it has one.
    """

    id: str
    kind: str
    to: str
    subject: str
    created_at: str
    link: str | None = None


@dataclass(frozen=True)
class MailboxMail:
    """One mail of the development mailbox, read back from its ``.eml`` file.

    Attributes:
        entry: Its index entry.
        sender: The ``From`` header.
        text: The plain-text body.
        html: The HTML body (show it sandboxed: it is a whole HTML document).
    """

    entry: MailboxEntry
    sender: str
    text: str
    html: str


def to_message(mail: Mail, settings: Settings | None = None) -> EmailMessage:
    """Build the MIME message: ``multipart/alternative`` with the text and HTML bodies.

    Args:
        mail: The mail.
        settings: The settings (``From`` address); the process-wide ones by default.

    Returns:
        The message, with ``From``, ``To``, ``Subject``, ``Date`` and ``Message-ID``.

    Raises:
        ValueError: If the recipient is not exactly one valid address.
    """
    settings = settings or get_settings()
    recipient = Address(addr_spec=mail.to)  # refuses "a,b@c", CR/LF, several addresses
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = recipient
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=_sender_domain(settings))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def send(
    mail: Mail, settings: Settings | None = None, *, retry_delay: float = RETRY_DELAY
) -> SendResult:
    """Send a mail (blocking: use :func:`send_async` from an event handler).

    Args:
        mail: The mail.
        settings: The settings; the process-wide ones by default.
        retry_delay: Seconds before the one retry of a transient failure.

    Returns:
        :class:`MailSent`, or :class:`MailFailed` (already logged).
    """
    settings = settings or get_settings()
    try:
        message = to_message(mail, settings)
    except ValueError:
        return _failed(mail, "", "the recipient is not a valid address", False, 0)
    message_id = str(message["Message-ID"])
    smtp = settings.smtp
    if smtp is None:
        if settings.is_production:
            return _failed(mail, message_id, "no SMTP server is configured", False, 0)
        try:
            return _to_mailbox(mail, message, settings)
        except OSError as exc:
            reason = f"development mailbox not writable ({type(exc).__name__})"
            return _failed(mail, message_id, reason, False, 1)
    attempt = 1
    while True:
        try:
            _deliver(message, mail.to, smtp, _local_hostname(settings))
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            reason, transient = _classify(exc, smtp)
            if not transient or attempt == 2:
                return _failed(mail, message_id, reason, transient, attempt)
            log.info("mail %s %s: %s; retrying", mail.kind, message_id, reason)
            time.sleep(retry_delay)
            attempt += 1
            continue
        log.info("mail %s %s sent (attempt %d)", mail.kind, message_id, attempt)
        return MailSent(message_id, "smtp")


_pool: ThreadPoolExecutor | None = None


async def send_async(mail: Mail, settings: Settings | None = None) -> SendResult:
    """Send a mail off the event loop, in the mail threads.

    Args:
        mail: The mail.
        settings: The settings; the process-wide ones by default.

    Returns:
        :class:`MailSent`, or :class:`MailFailed` (already logged).
    """
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=MAIL_THREADS, thread_name_prefix="onboard-mail")
    settings = settings or get_settings()
    return await asyncio.get_running_loop().run_in_executor(_pool, send, mail, settings)


def list_mailbox(settings: Settings | None = None, limit: int = 50) -> list[MailboxEntry]:
    """The newest mails of the development mailbox (none in production).

    Args:
        settings: The settings; the process-wide ones by default.
        limit: At most this many.

    Returns:
        Entries, newest first.
    """
    settings = settings or get_settings()
    if settings.is_production:
        return []
    entries = _read_index(settings.mail_dir)
    return [_entry(raw) for raw in reversed(entries[-limit:])] if limit > 0 else []


def read_mailbox_mail(mail_id: object, settings: Settings | None = None) -> MailboxMail | None:
    """One mail of the development mailbox (``None`` in production or if unknown).

    Args:
        mail_id: Its id (from the client: checked before it names a file).
        settings: The settings; the process-wide ones by default.

    Returns:
        The mail read back from its ``.eml`` file, or ``None``.
    """
    settings = settings or get_settings()
    if settings.is_production or not isinstance(mail_id, str) or not _MAILBOX_ID.fullmatch(mail_id):
        return None
    entry = next((e for e in _read_index(settings.mail_dir) if e["id"] == mail_id), None)
    path = settings.mail_dir / f"{mail_id}.eml"
    if entry is None or not path.is_file():
        return None
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return MailboxMail(
        _entry(entry),
        sender=str(message["From"]),
        text=_body(message, "plain"),
        html=_body(message, "html"),
    )


def clear_mailbox(settings: Settings | None = None) -> int:
    """Delete every mail of the development mailbox (nothing in production).

    Args:
        settings: The settings; the process-wide ones by default.

    Returns:
        How many mails were deleted.
    """
    settings = settings or get_settings()
    if settings.is_production or not settings.mail_dir.is_dir():
        return 0
    with _locked(settings.mail_dir):
        entries = _read_index(settings.mail_dir)
        for entry in entries:
            (settings.mail_dir / f"{entry['id']}.eml").unlink(missing_ok=True)
        _write_index(settings.mail_dir, [])
    return len(entries)


# --- SMTP -----------------------------------------------------------------------------------


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The client TLS context trusting ``ca_file`` (or the system's CAs), made once.

    Loading the certificates costs ~30 ms of CPU, as much as a password hash: a context is
    kept per file and its modification time (a replaced file is read again) and shared by
    every send, which is safe (connections do not change a context).
    """
    if ca_file is None:
        return _tls_context_for(None, 0, 0)
    stat = os.stat(ca_file)
    return _tls_context_for(ca_file, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _tls_context_for(ca_file: str | None, _mtime_ns: int, _size: int) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def _deliver(
    message: EmailMessage, recipient: str, smtp: SmtpSettings, local_hostname: str
) -> None:
    # Plain SMTP (``smtp://``, no TLS and so no login) needs no context at all.
    context = _tls_context(smtp.ca_file) if smtp.security in ("tls", "starttls") else None
    client: smtplib.SMTP
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(
            smtp.host, smtp.port, local_hostname, timeout=smtp.timeout, context=context
        )
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, local_hostname, timeout=smtp.timeout)
    try:
        if smtp.security == "starttls":
            # Raises SMTPNotSupportedError when the server offers no STARTTLS: never
            # carry on in clear text.
            client.starttls(context=context)
        if smtp.username is not None:
            client.login(smtp.username, smtp.password or "")
        # The envelope names the one recipient: nothing is read back from the headers.
        client.send_message(message, to_addrs=[recipient])
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()  # the mail is accepted already; a rude goodbye changes nothing
        client.close()


def _classify(exc: BaseException, smtp: SmtpSettings) -> tuple[str, bool]:
    """A short reason (no server text, which may quote addresses) and whether to retry."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _text in exc.recipients.values()})
        return f"recipient refused ({', '.join(map(str, codes))})", all(
            400 <= code < 500 for code in codes
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"login refused ({exc.smtp_code})", 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"server answered {exc.smtp_code}", 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "server lacks a required feature (STARTTLS, AUTH or SMTPUTF8)", False
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):
            return f"no answer within {smtp.timeout:g} s", True
        return "server closed the connection", True
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP error ({type(exc).__name__})", False
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "server certificate not trusted", False
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or type(exc).__name__})", False
    if isinstance(exc, TimeoutError):
        return f"no answer within {smtp.timeout:g} s", True
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(exc, UnicodeError):
        return "the address needs SMTPUTF8", False
    return f"network error ({type(exc).__name__})", True


def _failed(mail: Mail, message_id: str, reason: str, transient: bool, attempts: int) -> MailFailed:
    log.warning(
        "mail %s %s to a recipient at %s not sent after %d attempt(s): %s",
        mail.kind,
        message_id or "-",
        mail.to.rpartition("@")[2] or "?",
        attempts,
        reason,
    )
    return MailFailed(reason, transient)


def _sender_domain(settings: Settings) -> str:
    return parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"


def _local_hostname(settings: Settings) -> str:
    # Named explicitly: smtplib's default asks DNS for this machine's name (slow or absent).
    return urlsplit(settings.public_url).hostname or "localhost"


# --- development mailbox --------------------------------------------------------------------


def _to_mailbox(mail: Mail, message: EmailMessage, settings: Settings) -> MailSent:
    directory = settings.mail_dir
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    mail_id = f"{time.time_ns():016x}-{secrets.token_hex(4)}"
    (directory / f"{mail_id}.eml").write_bytes(message.as_bytes())
    entry = MailboxEntry(
        id=mail_id,
        kind=mail.kind.value,
        to=mail.to,
        subject=mail.subject,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        link=mail.link,
    )
    with _locked(directory):
        entries = [*_read_index(directory), asdict(entry)]
        for old in entries[:-MAILBOX_LIMIT]:
            (directory / f"{old['id']}.eml").unlink(missing_ok=True)
        _write_index(directory, entries[-MAILBOX_LIMIT:])
    # Development only (production has an SMTP server or does not start): the link is the
    # point of this line, so a newcomer can click through without opening any file.
    print(
        f"[dev mailbox] {mail.subject} -> {mail.to}"
        + (f"\n    {mail.link}" if mail.link else "")
        + f"\n    ({directory / mail_id}.eml)",
        flush=True,
    )
    return MailSent(str(message["Message-ID"]), "mailbox", mail_id)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold the mailbox lock: several workers may write mails at once."""
    with open(directory / _LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_index(directory: Path) -> list[dict[str, str | None]]:
    try:
        data = json.loads((directory / _INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    mails = data.get("mails") if isinstance(data, dict) else None
    if not isinstance(mails, list):
        return []
    return [e for e in mails if isinstance(e, dict) and isinstance(e.get("id"), str)]


def _entry(raw: dict[str, str | None]) -> MailboxEntry:
    def text(name: str) -> str:
        value = raw.get(name)
        return value if isinstance(value, str) else ""

    link = raw.get("link")
    return MailboxEntry(
        id=text("id"),
        kind=text("kind"),
        to=text("to"),
        subject=text("subject"),
        created_at=text("created_at"),
        link=link if isinstance(link, str) else None,
    )


def _write_index(directory: Path, entries: list[dict[str, str | None]]) -> None:
    # Written whole to a temporary file and renamed: a reader never sees half an index.
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".index-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"mails": entries}, handle, ensure_ascii=False, indent=1)
    os.replace(temporary, directory / _INDEX)


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if isinstance(part, EmailMessage) else ""
