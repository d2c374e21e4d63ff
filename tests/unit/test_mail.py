"""Mail through a real SMTP server in the test process, the development mailbox, the templates."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import threading
import time
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from onboard_app.services import mail, mail_templates
from onboard_app.services.mail import (
    Mail,
    MailFailed,
    MailKind,
    MailSent,
    clear_mailbox,
    list_mailbox,
    read_mailbox_mail,
    send,
    send_async,
)
from onboard_app.settings import Settings, SmtpSettings, load_settings
from tests.conftest import make_settings
from tests.fakes.smtp import SmtpFake, TlsFiles, make_tls_files, silent_server

TO = "ada@example.com"
TOKEN = "tok_" + "A" * 39
LINK = f"http://localhost:3000/verify?token={TOKEN}&next=/onboarding"
CODE = "042917"
PASSWORD = "s3cret-p@ss:w/rd"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def settings_for(tmp_path: Path, smtp: SmtpSettings | None, **changes: object) -> Settings:
    return make_settings(
        smtp=smtp,
        mail_dir=tmp_path / "mail",
        mail_from="Onboard <no-reply@onboard.test>",
        **changes,
    )


def verify_mail(to: str = TO) -> Mail:
    return mail_templates.verify_email(to, LINK, CODE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged, the fake server's own log aside (it is not the app)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))


def assert_no_secrets(text: str) -> None:
    for secret in (PASSWORD, TOKEN, CODE, "042 917", LINK):
        assert secret not in text


# --- plain SMTP: what the server receives ---------------------------------------------------


def test_plain_smtp_delivers_both_bodies_and_the_headers(tmp_path: Path) -> None:
    with SmtpFake("plain") as smtp:
        settings = settings_for(tmp_path, smtp.settings())
        result = send(verify_mail(), settings)
    assert isinstance(result, MailSent) and result.via == "smtp"
    (received,) = smtp.received
    assert received.rcpt_tos == [TO]
    assert received.mail_from == "no-reply@onboard.test"
    assert received.login is None and not received.over_tls
    message = received.message
    assert message["From"] == "Onboard <no-reply@onboard.test>"
    assert message["To"] == TO
    assert message["Subject"] == "Confirm your email address"
    assert message["Message-ID"] == result.message_id
    assert result.message_id.endswith("@onboard.test>")
    assert message["Date"] and message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert LINK in text.get_content()
    assert "042 917" in text.get_content()
    assert "24 hours" in text.get_content()
    assert f'href="{LINK.replace("&", "&amp;")}"' in html.get_content()
    assert "042 917" in html.get_content()
    assert not (tmp_path / "mail").exists()  # the mailbox is for development without SMTP


def test_the_envelope_names_only_the_recipient(tmp_path: Path) -> None:
    with SmtpFake("plain") as smtp:
        result = send(verify_mail("grace@example.com"), settings_for(tmp_path, smtp.settings()))
    assert isinstance(result, MailSent)
    assert [item.rcpt_tos for item in smtp.received] == [["grace@example.com"]]


def test_non_ascii_text_arrives_intact(tmp_path: Path) -> None:
    notice = mail_templates.email_change_notice(TO, "zoë.ünïcode@example.com", LINK)
    with SmtpFake("plain") as smtp:
        assert isinstance(send(notice, settings_for(tmp_path, smtp.settings())), MailSent)
    body = smtp.messages[0].get_body(("plain",))
    assert isinstance(body, EmailMessage)
    assert "zoë.ünïcode@example.com" in body.get_content()


@pytest.mark.parametrize(
    "to", ["a,b@example.com", "x@example.com\r\nBcc: victim@example.com", "two@a.com three@b.com"]
)
def test_a_bad_recipient_is_a_failure_not_a_crash_and_sends_nothing(
    tmp_path: Path, to: str
) -> None:
    with SmtpFake("plain") as smtp:
        result = send(verify_mail(to), settings_for(tmp_path, smtp.settings()))
    assert result == MailFailed("the recipient is not a valid address", transient=False)
    assert smtp.received == []


def test_a_refused_recipient_is_permanent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with SmtpFake("plain", refuse={TO}) as smtp:
        result = send(verify_mail(), settings_for(tmp_path, smtp.settings()), retry_delay=0)
    assert result == MailFailed("recipient refused (550)", transient=False)
    assert smtp.received == []
    assert "after 1 attempt(s)" in log_text(caplog)


# --- TLS and login --------------------------------------------------------------------------


def test_starttls_with_login_from_a_url_with_encoded_credentials(
    tmp_path: Path, tls: TlsFiles
) -> None:
    with SmtpFake("starttls", tls=tls, logins={"mail@er": PASSWORD}) as smtp:
        loaded = load_settings(
            {
                "ONBOARD_ENV": "production",
                "ONBOARD_SIGNING_KEY": "k" * 43,
                "ONBOARD_SMTP_URL": smtp.url("mail@er", PASSWORD),
                "ONBOARD_SMTP_CA_FILE": str(tls.ca_file),
                "ONBOARD_MAIL_FROM": "team@onboard.test",
            }
        )
        assert loaded.smtp is not None and loaded.smtp.password == PASSWORD
        result = send(verify_mail(), loaded)
    assert isinstance(result, MailSent)
    (received,) = smtp.received
    assert received.login == "mail@er" and received.over_tls


def test_starttls_wrong_password_fails_without_retry_or_leak(
    tmp_path: Path, tls: TlsFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SmtpFake("starttls", tls=tls, logins={"mailer": "the-right-one"}) as smtp:
        settings = settings_for(tmp_path, smtp.settings(username="mailer", password=PASSWORD))
        result = send(verify_mail(), settings, retry_delay=0)
    assert result == MailFailed("login refused (535)", transient=False)
    assert smtp.received == []
    assert "login refused (535)" in log_text(caplog)
    assert_no_secrets(log_text(caplog))


def test_the_server_certificate_must_be_trusted(tmp_path: Path, tls: TlsFiles) -> None:
    stranger = make_tls_files(tmp_path / "other-ca", common_name="Somebody else's CA")
    with SmtpFake("starttls", tls=tls) as smtp:
        settings = settings_for(tmp_path, smtp.settings(ca_file=str(stranger.ca_file)))
        result = send(verify_mail(), settings, retry_delay=0)
    assert result == MailFailed("server certificate not trusted", transient=False)
    assert smtp.received == []


def test_starttls_is_never_skipped_when_the_server_does_not_offer_it(tmp_path: Path) -> None:
    with SmtpFake("plain") as smtp:
        settings = settings_for(tmp_path, smtp.settings(security="starttls"))
        result = send(verify_mail(), settings, retry_delay=0)
    assert isinstance(result, MailFailed) and not result.transient
    assert "STARTTLS" in result.reason
    assert smtp.received == []  # nothing went out in clear text


def test_smtps_with_login(tmp_path: Path, tls: TlsFiles) -> None:
    with SmtpFake("tls", tls=tls, logins={"mailer": PASSWORD}) as smtp:
        settings = settings_for(tmp_path, smtp.settings(username="mailer", password=PASSWORD))
        result = send(verify_mail(), settings)
    assert isinstance(result, MailSent)
    (received,) = smtp.received
    assert received.login == "mailer" and received.over_tls


def test_smtps_against_a_plain_server_fails_cleanly(tmp_path: Path) -> None:
    with SmtpFake("plain") as smtp:
        result = send(
            verify_mail(), settings_for(tmp_path, smtp.settings(security="tls")), retry_delay=0
        )
    assert isinstance(result, MailFailed) and result.reason.startswith("TLS failed")
    assert smtp.received == []


# --- timeouts and retries -------------------------------------------------------------------


def test_a_server_that_never_answers_times_out_twice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with silent_server() as port:
        smtp = SmtpSettings("127.0.0.1", port, timeout=0.3)
        started = time.monotonic()
        result = send(verify_mail(), settings_for(tmp_path, smtp), retry_delay=0.1)
        elapsed = time.monotonic() - started
    assert result == MailFailed("no answer within 0.3 s", transient=True)
    assert 0.6 <= elapsed < 3  # two attempts of 0.3 s and the pause, never the OS default
    assert "retrying" in log_text(caplog)
    assert "after 2 attempt(s): no answer within 0.3 s" in log_text(caplog)


def test_a_refused_connection_is_retried_once(tmp_path: Path) -> None:
    smtp = SmtpSettings("127.0.0.1", free_port(), timeout=1)
    result = send(verify_mail(), settings_for(tmp_path, smtp), retry_delay=0)
    assert result == MailFailed("connection refused", transient=True)


def test_a_temporary_refusal_is_retried_and_sent_once(tmp_path: Path) -> None:
    with SmtpFake("plain", fail_next=1) as smtp:
        result = send(verify_mail(), settings_for(tmp_path, smtp.settings()), retry_delay=0)
    assert isinstance(result, MailSent)
    assert smtp.refused == 1
    assert len(smtp.received) == 1


def test_two_temporary_refusals_give_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with SmtpFake("plain", fail_next=5) as smtp:
        result = send(verify_mail(), settings_for(tmp_path, smtp.settings()), retry_delay=0)
    assert result == MailFailed("server answered 451", transient=True)
    assert smtp.refused == 2 and smtp.received == []
    text = log_text(caplog)
    assert "verify_email" in text and "example.com" in text
    assert TO not in text  # only the domain of the recipient
    assert_no_secrets(text)


async def test_send_async_leaves_the_event_loop_free(tmp_path: Path) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    with silent_server() as port:
        settings = settings_for(tmp_path, SmtpSettings("127.0.0.1", port, timeout=0.3))
        task = asyncio.create_task(ticker())
        result = await send_async(verify_mail(), settings)
        task.cancel()
    assert isinstance(result, MailFailed) and result.transient
    assert ticks >= 15  # ~1.6 s of sending, the loop ticked all along


async def test_send_async_sends(tmp_path: Path) -> None:
    with SmtpFake("plain") as smtp:
        result = await send_async(verify_mail(), settings_for(tmp_path, smtp.settings()))
    assert isinstance(result, MailSent) and len(smtp.received) == 1


def test_production_without_smtp_sends_nothing_anywhere(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, None, environment="production")
    assert send(verify_mail(), settings) == MailFailed(
        "no SMTP server is configured", transient=False
    )
    assert not (tmp_path / "mail").exists()


# --- the development mailbox ----------------------------------------------------------------


def test_development_without_smtp_keeps_mail_in_the_mailbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(tmp_path, None)
    sent = verify_mail()
    result = send(sent, settings)
    assert isinstance(result, MailSent) and result.via == "mailbox" and result.mailbox_id
    eml = tmp_path / "mail" / f"{result.mailbox_id}.eml"
    assert eml.is_file()
    index = json.loads((tmp_path / "mail" / "index.json").read_text())
    assert [entry["id"] for entry in index["mails"]] == [result.mailbox_id]
    printed = capsys.readouterr().out
    assert "Confirm your email address" in printed and TO in printed and LINK in printed
    assert len(printed.splitlines()) <= 3

    (entry,) = list_mailbox(settings)
    assert (entry.id, entry.kind, entry.to, entry.link) == (
        result.mailbox_id,
        "verify_email",
        TO,
        LINK,
    )
    opened = read_mailbox_mail(entry.id, settings)
    assert opened is not None
    assert opened.entry == entry
    assert opened.sender == "Onboard <no-reply@onboard.test>"
    assert opened.text.strip() == sent.text.strip()
    assert opened.html.strip() == sent.html.strip()


def test_the_mailbox_lists_newest_first_and_keeps_a_bounded_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mail, "MAILBOX_LIMIT", 3)
    settings = settings_for(tmp_path, None)
    ids = []
    for n in range(5):
        result = send(verify_mail(f"user{n}@example.com"), settings)
        assert isinstance(result, MailSent)
        ids.append(result.mailbox_id)
    assert [entry.id for entry in list_mailbox(settings)] == ids[:1:-1]
    assert [entry.id for entry in list_mailbox(settings, limit=2)] == ids[:2:-1]
    assert sorted(path.stem for path in (tmp_path / "mail").glob("*.eml")) == sorted(ids[2:])
    assert read_mailbox_mail(ids[0], settings) is None


def test_concurrent_writers_lose_no_mail(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, None)
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        barrier.wait()
        send(verify_mail(f"writer{n}@example.com"), settings)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(list_mailbox(settings)) == 8
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 8


@pytest.mark.parametrize(
    "mail_id",
    ["../index", "../../etc/passwd", "index", "", None, 7, "0" * 16 + "-" + "0" * 8, "A" * 25],
)
def test_reading_takes_only_a_known_well_formed_id(tmp_path: Path, mail_id: object) -> None:
    settings = settings_for(tmp_path, None)
    send(verify_mail(), settings)
    assert read_mailbox_mail(mail_id, settings) is None


def test_the_mailbox_is_closed_in_production(tmp_path: Path) -> None:
    development = settings_for(tmp_path, None)
    result = send(verify_mail(), development)
    assert isinstance(result, MailSent)
    production = settings_for(tmp_path, SmtpSettings("127.0.0.1", 25), environment="production")
    assert list_mailbox(production) == []
    assert read_mailbox_mail(result.mailbox_id, production) is None
    assert clear_mailbox(production) == 0
    assert len(list_mailbox(development)) == 1


def test_clear_mailbox(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, None)
    assert clear_mailbox(settings) == 0  # no folder yet
    for n in range(3):
        send(verify_mail(f"u{n}@example.com"), settings)
    assert clear_mailbox(settings) == 3
    assert list_mailbox(settings) == []
    assert list((tmp_path / "mail").glob("*.eml")) == []


def test_an_unwritable_mailbox_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "mail").write_text("a file where the folder should be")
    result = send(verify_mail(), settings_for(tmp_path, None))
    assert result == MailFailed(
        "development mailbox not writable (FileExistsError)", transient=False
    )


def test_a_damaged_index_reads_as_empty(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, None)
    send(verify_mail(), settings)
    (tmp_path / "mail" / "index.json").write_text("{not json")
    assert list_mailbox(settings) == []
    assert isinstance(send(verify_mail(), settings), MailSent)
    assert len(list_mailbox(settings)) == 1


# --- the templates --------------------------------------------------------------------------

RESET_LINK = "http://localhost:3000/reset?token=abc"
LOGIN_LINK = "http://localhost:3000/login"

BUILT = {
    MailKind.VERIFY_EMAIL: lambda: mail_templates.verify_email(TO, LINK, CODE),
    MailKind.SIGNUP_ATTEMPT: lambda: mail_templates.signup_attempt(TO, LOGIN_LINK, RESET_LINK),
    MailKind.PASSWORD_RESET: lambda: mail_templates.password_reset(TO, RESET_LINK),
    MailKind.EMAIL_CHANGE_VERIFY: lambda: mail_templates.email_change_verify(TO, LINK, CODE),
    MailKind.EMAIL_CHANGE_NOTICE: lambda: mail_templates.email_change_notice(
        TO, "new@example.com", RESET_LINK
    ),
    MailKind.EMAIL_CHANGE_ATTEMPT: lambda: mail_templates.email_change_attempt(
        TO, LOGIN_LINK, RESET_LINK
    ),
    MailKind.ACCOUNT_DELETED: lambda: mail_templates.account_deleted(TO),
    MailKind.PASSWORD_CHANGED: lambda: mail_templates.password_changed(TO, RESET_LINK),
    MailKind.SECURITY_NOTICE: lambda: mail_templates.security_notice(
        TO, "two_factor_off", RESET_LINK
    ),
}


@pytest.mark.parametrize("change", list(mail_templates.SECURITY_CHANGES))
def test_each_security_notice_names_its_change_and_the_way_out(
    change: mail_templates.SecurityChange,
) -> None:
    subject, sentence = mail_templates.SECURITY_CHANGES[change]
    built = mail_templates.security_notice(TO, change, RESET_LINK)
    assert built.subject == subject and sentence in built.text
    assert built.link == RESET_LINK and "reset your password" in built.text


def test_every_kind_has_a_builder() -> None:
    assert set(BUILT) == set(MailKind)


@pytest.mark.parametrize("kind", list(MailKind))
def test_each_mail_says_the_same_in_text_and_html(kind: MailKind) -> None:
    built = BUILT[kind]()
    assert built.kind is kind and built.to == TO and built.subject
    assert built.html.startswith("<!DOCTYPE html>") and "<title>" in built.html
    if built.link is not None:
        assert built.link in built.text
        assert f'href="{built.link.replace("&", "&amp;")}"' in built.html
    for sentence in built.text.split("\n\n")[1:-1]:
        first_line = sentence.strip().splitlines()[0].rstrip(":")
        assert first_line.replace("'", "&#x27;") in built.html


def test_the_mails_that_carry_codes_and_expiry() -> None:
    verify = BUILT[MailKind.VERIFY_EMAIL]()
    assert "042 917" in verify.text and "24 hours" in verify.text
    reset = BUILT[MailKind.PASSWORD_RESET]()
    assert "30 minutes" in reset.text and RESET_LINK in reset.text
    short = mail_templates.password_reset(TO, RESET_LINK, valid_for=timedelta(hours=1))
    assert "for 1 hour." in short.text
    change = BUILT[MailKind.EMAIL_CHANGE_VERIFY]()
    assert "042 917" in change.html and "keeps its current address" in change.text
    attempt = BUILT[MailKind.SIGNUP_ATTEMPT]()
    assert LOGIN_LINK in attempt.text and RESET_LINK in attempt.text


def test_values_are_escaped_in_html() -> None:
    hostile = '"><script>alert(1)</script>@example.com'
    notice = mail_templates.email_change_notice(TO, hostile, RESET_LINK + '&x="<b>')
    assert "<script>" not in notice.html and "&lt;script&gt;" in notice.html
    assert 'href="http://localhost:3000/reset?token=abc&amp;x=&quot;&lt;b&gt;"' in notice.html
    assert hostile in notice.text  # plain text needs no escaping


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "/relative/path", "data:text/html,hi", "ftp://x.example"]
)
def test_links_must_be_absolute_http(link: str) -> None:
    with pytest.raises(ValueError):
        mail_templates.password_reset(TO, link)


def test_the_mail_repr_holds_no_link_or_body() -> None:
    assert_no_secrets(repr(verify_mail()))


def test_the_tls_context_is_made_once_per_ca_file_and_again_when_it_changes(
    tmp_path: Path, tls: TlsFiles
) -> None:
    from onboard_app.services import mail

    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(tls.ca_file.read_bytes())
    first = mail._tls_context(str(ca_file))
    assert mail._tls_context(str(ca_file)) is first  # loading CAs costs ~30 ms: not per mail
    other = make_tls_files(tmp_path / "other-ca", common_name="A replacement CA")
    ca_file.write_bytes(other.ca_file.read_bytes() + b"\n")  # another size: seen as replaced
    replaced = mail._tls_context(str(ca_file))
    assert replaced is not first
    assert [c["subject"] for c in replaced.get_ca_certs()] == [
        c["subject"] for c in ssl.create_default_context(cafile=str(other.ca_file)).get_ca_certs()
    ]
