"""A real SMTP server in the test process (aiosmtpd), and TLS certificates made on the spot.

The server runs its own asyncio loop in a thread, bound to 127.0.0.1 on a free port, and
keeps every message it accepts. It speaks plain SMTP, STARTTLS (required before AUTH) or
SMTPS (TLS from the first byte), optionally with a login, and can answer ``451`` to the
next few messages to exercise the sender's retry. :func:`silent_server` is a socket that
accepts connections and never says a word (the sender's timeout).

Usage::

    tls = make_tls_files(tmp_path)
    with SmtpFake("starttls", tls=tls, logins={"mailer": "secret"}) as smtp:
        settings = make_settings(smtp=smtp.settings(username="mailer", password="secret"))
        ...
        message = smtp.messages[0]
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from onboard_app.settings import SmtpSettings

Mode = Literal["plain", "starttls", "tls"]


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost.

    Attributes:
        ca_file: The CA certificate (what the client trusts).
        cert_file: The server certificate.
        key_file: The server's private key.
    """

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """The server side TLS context."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_tls_files(directory: Path, common_name: str = "Onboard test CA") -> TlsFiles:
    """Write a CA and a server certificate (with the extensions strict clients require).

    Args:
        directory: Where to write the PEM files.
        common_name: The CA's name (two calls give two unrelated CAs).

    Returns:
        The file paths.
    """
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@dataclass
class Received:
    """One message the server accepted.

    Attributes:
        mail_from: The envelope sender.
        rcpt_tos: The envelope recipients.
        data: The message as received.
        login: The user it was sent under, or ``None``.
        over_tls: Whether the connection was encrypted when it was sent.
    """

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    over_tls: bool

    @property
    def message(self) -> EmailMessage:
        """The parsed message."""
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Handler:
    fake: SmtpFake
    tls_from_start: bool

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.fake.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.fake.lock:
            if self.fake.fail_next > 0:
                self.fake.fail_next -= 1
                self.fake.refused += 1
                return "451 4.3.0 Try again later"
            login = session.auth_data.login.decode() if session.authenticated else None
            self.fake.received.append(
                Received(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or b""),
                    login=login,
                    over_tls=self.tls_from_start or session.ssl is not None,
                )
            )
        return "250 2.0.0 OK"


@dataclass
class SmtpFake:
    """The in-process SMTP server (a context manager: started on enter, stopped on exit).

    Attributes:
        mode: ``plain``, ``starttls`` or ``tls``.
        tls: Certificates (required for ``starttls`` and ``tls``).
        logins: User -> password; when given, AUTH is required to send.
        fail_next: Answer ``451`` to this many messages before accepting.
        refuse: Recipients answered ``550`` (no such mailbox).
        received: What was accepted, in order.
        refused: How many messages got the ``451``.
        port: The bound port (after start).
    """

    mode: Mode = "plain"
    tls: TlsFiles | None = None
    logins: dict[str, str] | None = None
    fail_next: int = 0
    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None
    _thread: threading.Thread | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        """The parsed messages received so far."""
        with self.lock:
            return [item.message for item in self.received]

    def settings(self, **changes: Any) -> SmtpSettings:
        """Client settings pointing at this server (trusting its CA)."""
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "security": self.mode,
            "timeout": 5.0,
            "ca_file": str(self.tls.ca_file) if self.tls else None,
        }
        values.update(changes)
        return SmtpSettings(**values)

    def url(self, username: str | None = None, password: str | None = None) -> str:
        """An ``ONBOARD_SMTP_URL`` for this server (credentials URL-encoded)."""
        scheme = {"plain": "smtp", "starttls": "smtp+starttls", "tls": "smtps"}[self.mode]
        login = f"{quote(username, safe='')}:{quote(password or '', safe='')}@" if username else ""
        return f"{scheme}://{login}127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpFake:
        """Start the server on 127.0.0.1, a free port."""
        if self.mode != "plain" and self.tls is None:
            raise ValueError(f"{self.mode} needs TLS files")
        # aiosmtpd logs every line it receives at DEBUG: the links of the mails under test.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(self._start())
            sockname = self._server.sockets[0].getsockname()
            self.port = int(sockname[1])
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="smtp-fake", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the SMTP fake did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server and its thread."""
        loop, server = self._loop, self._server
        assert loop is not None and server is not None and self._thread is not None

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        loop.close()

    async def _start(self) -> asyncio.AbstractServer:
        context = self.tls.server_context() if self.tls else None
        handler = _Handler(self, tls_from_start=self.mode == "tls")

        def factory() -> SMTP:
            with warnings.catch_warnings():
                # "AUTH without TLS": SMTPS is TLS from the first byte (see _smtp).
                warnings.simplefilter("ignore", UserWarning)
                return self._smtp(handler, context)

        return await asyncio.get_running_loop().create_server(
            factory, "127.0.0.1", 0, ssl=context if self.mode == "tls" else None
        )

    def _smtp(self, handler: _Handler, context: ssl.SSLContext | None) -> SMTP:
        return SMTP(
            handler,
            hostname="localhost",
            tls_context=context if self.mode == "starttls" else None,
            require_starttls=self.mode == "starttls",
            auth_required=self.logins is not None,
            # SMTPS is encrypted from the start, which aiosmtpd does not see by itself.
            auth_require_tls=self.mode == "starttls",
            authenticator=self._authenticate if self.logins is not None else None,
            timeout=30,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.logins is not None
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if self.logins.get(user) == password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)


@contextmanager
def silent_server() -> Iterator[int]:
    """A listening socket on 127.0.0.1 that never answers (the kernel completes the connect).

    Yields:
        Its port.
    """
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
