"""Logging: every secret kind redacted in message, arguments and traceback, repeats bounded.

The redactor and the handler filter are tested in this process on loggers of their own;
:func:`onboard_app.logs.install` changes process-wide state (the record factory, the root
handler), so it runs in a fresh interpreter, as it does in a server process.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import secrets
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from onboard_app.logs import (
    MAX_RECORD_CHARS,
    REDACTED,
    LogGuard,
    Redactor,
    RepeatLimiter,
    bounded,
    redact_record,
    repeat_key,
    settings_secrets,
)
from onboard_app.settings import OAuthClientSettings, SigningKey, SmtpSettings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
KEY = secrets.token_bytes(32)
TOKEN = jwt.encode(
    {"sub": "12", "jti": uuid.uuid4().hex, "onb": "profile"},
    KEY,
    algorithm="HS256",
    headers={"kid": "k1", "typ": "onboard-session+jwt"},
)
CLIENT_TOKEN = str(uuid.uuid4())
PASSWORD = "correct horse battery staple"
COOKIE = "onboard_session=" + secrets.token_urlsafe(24)
CODE = secrets.token_hex(10)
STATE = secrets.token_urlsafe(32)
VERIFIER = secrets.token_urlsafe(48)
CLIENT_SECRET = "gh-secret-" + secrets.token_hex(16)
SMTP_PASSWORD = "smtp-pass-" + secrets.token_hex(8)
BEARER = secrets.token_urlsafe(30)
URL_PASSWORD = secrets.token_hex(6)
KEY_B64URL = base64.urlsafe_b64encode(KEY).decode()
KEY_B64 = base64.b64encode(KEY).decode()
BASIC = base64.b64encode(b"user:pw-secret").decode()
JWE = ".".join(["eyJhbGciOiJSU0EtT0FFUCJ9", "a" * 40, "b" * 16, "c" * 60, "d" * 22])
SETTINGS = make_settings(
    signing_keys=(SigningKey("k1", KEY),),
    github=OAuthClientSettings("github", "GitHub", "client-id", CLIENT_SECRET),
    smtp=SmtpSettings("smtp.example.com", 587, "starttls", "mailer", SMTP_PASSWORD),
)
REDACT = Redactor(settings_secrets(SETTINGS))
LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]

# (what, a line as a library would write it, the secret it holds)
CASES = [
    ("jwt bare", f"token refused: {TOKEN} (expired)", TOKEN),
    ("jwt in repr", f"Event(payload={{'value': {TOKEN!r}}})", TOKEN),
    ("jwt in json", f'{{"value": "{TOKEN}"}}', TOKEN),
    ("jwe", f"id token {JWE} rejected", JWE),
    ("storage var", f"{{'vars': {{'a.b.token_rx_state_': 'not-a-jwt-{BEARER}'}}}}", BEARER),
    ("client token", f"send delta to disconnected client {CLIENT_TOKEN!r}", CLIENT_TOKEN),
    ("client token upper", f"for token {CLIENT_TOKEN.upper()}", CLIENT_TOKEN.upper()),
    ("token field", f"router_data={{'token': 'tab-{BEARER}', 'ip': '1.2.3.4'}}", BEARER),
    ("token query", f"GET /_event/?EIO=4&transport=websocket&token=x{BEARER}", BEARER),
    ("cookie dict", f"'headers': {{'host': 'h', 'cookie': '{COOKIE}; theme=dark'}}", COOKIE),
    ("cookie header", f"Cookie: theme=dark; {COOKIE}\r\nHost: x", COOKIE),
    ("cookie asgi", f"[(b'host', b'x'), (b'cookie', b'{COOKIE}')]", COOKIE),
    ("set-cookie", f"Set-Cookie: {COOKIE}; Path=/; HttpOnly", COOKIE),
    ("authorization bearer", f"'authorization': 'Bearer {BEARER}'", BEARER),
    ("authorization basic", f"Authorization: Basic {BASIC}", BASIC.rstrip("=")),
    ("bearer in prose", f"calling api with bearer {BEARER}", BEARER),
    ("password repr", f"payload={{'form': {{'email': 'a@b.c', 'password': {PASSWORD!r}}}}}",
     PASSWORD),
    ("password json", f'{{"email": "a@b.c", "password": "{PASSWORD}"}}', PASSWORD),
    ("password escaped quote", "{'password': 'it\\'s a secret pw'}", "a secret pw"),
    ("password query", "email=a%40b.c&password=hunter2-secret&next=%2F", "hunter2-secret"),
    ("new password kwarg", f"change(new_password={PASSWORD!r})", PASSWORD),
    ("password cut", f"payload={{'password': '{PASSWORD}", PASSWORD),
    ("oauth query", f"/auth/callback/github?code={CODE}&state={STATE}", CODE),
    ("oauth state", f"/auth/callback/github?code={CODE}&state={STATE}", STATE),
    ("oauth dict", f"_pending={{'state': {STATE!r}, 'code_verifier': {VERIFIER!r}}}", VERIFIER),
    ("oauth nonce", f"nonce={STATE}", STATE),
    ("key base64url", f"ONBOARD_SIGNING_KEY=k1:{KEY_B64URL}", KEY_B64URL.rstrip("=")),
    ("key base64", f"key {KEY_B64}", KEY_B64.rstrip("=")),
    ("key hex", f"key {KEY.hex()}", KEY.hex()),
    ("key bytes repr", f"SigningKey(secret={KEY!r})", repr(KEY)[2:-1]),
    ("client secret", f"token endpoint said no to {CLIENT_SECRET}", CLIENT_SECRET),
    ("smtp password", f"login failed for mailer/{SMTP_PASSWORD}", SMTP_PASSWORD),
    ("url password", f"connecting to postgresql+psycopg://app:{URL_PASSWORD}@db/x", URL_PASSWORD),
]  # fmt: skip


@pytest.mark.parametrize(("what", "line", "secret"), CASES, ids=[c[0] for c in CASES])
def test_every_kind_of_secret_is_redacted(what: str, line: str, secret: str) -> None:
    assert secret in line
    redacted = REDACT(line)
    assert secret not in redacted
    assert "<redacted" in redacted


@pytest.mark.parametrize(
    "line",
    [
        "user 12 signed in",
        "session rejected: expired",
        "session re-minted for user 7 after update",
        "saving step profile for user 3 failed",
        "process exited with code: 1, state: ok",
        "No registered handler found for event: reflex___state____state.bogus_handler",
        "onboard_app.services.mail: SMTP server unreachable",
        "audit event=signin user=12 method=password client=203.0.113.7",
        f"jti {uuid.uuid4().hex} revoked",
        "sqlite:///tmp/onboard.db opened",
        "Frontend version 0.10.1 for session QXKEwE2NLfeH8_poAAAB does not match",
    ],
)
def test_lines_without_secrets_are_left_alone(line: str) -> None:
    assert REDACT(line) == line


def test_key_value_redaction_keeps_the_key_and_the_quotes() -> None:
    line = f"{{'email': 'a@b.c', 'password': {PASSWORD!r}, 'token': {CLIENT_TOKEN!r}}}"
    assert REDACT(line) == f"{{'email': 'a@b.c', 'password': '{REDACTED}', 'token': '{REDACTED}'}}"
    assert REDACT(f"x {TOKEN} y") == "x <redacted jwt> y"


def test_text_whose_lowercase_changes_length_is_still_redacted() -> None:
    line = f"İstanbul user: {{'password': {PASSWORD!r}, 'cookie': {COOKIE!r}}}"
    assert len(line.lower()) != len(line)
    redacted = REDACT(line)
    assert PASSWORD not in redacted and COOKIE not in redacted
    assert redacted.startswith("İstanbul user:")


def test_short_literals_are_not_searched_for() -> None:
    assert Redactor(["abc"])("abc abc") == "abc abc"


def test_settings_secrets_cover_keys_client_secrets_and_smtp() -> None:
    found = settings_secrets(SETTINGS)
    assert KEY.hex() in found and CLIENT_SECRET in found and SMTP_PASSWORD in found
    assert settings_secrets(make_settings(signing_keys=())) == []


# --- records ------------------------------------------------------------------------------


@pytest.fixture
def guarded() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own whose one handler has the guard (as install() sets up Reflex's)."""
    logger = logging.getLogger(f"test.logs.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogGuard(RepeatLimiter()))
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def _process_redactor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The redactor install() would set up for SETTINGS."""
    import onboard_app.logs as logs

    monkeypatch.setattr(logs, "_redactor", REDACT)


def _raise(secret: str) -> None:
    try:
        raise ValueError(f"Failed to deserialize event data: {{'password': {secret!r}}}")
    except ValueError as exc:
        raise RuntimeError(f"handler failed for {TOKEN}") from exc


@pytest.mark.parametrize("level", LEVELS, ids=logging.getLevelName)
def test_secrets_in_message_arguments_and_traceback_never_reach_a_handler(
    guarded: tuple[logging.Logger, io.StringIO], level: int
) -> None:
    logger, stream = guarded
    logger.log(level, f"Event data: {{'password': {PASSWORD!r}}}")
    logger.log(level, "Received event from %s: %r", CLIENT_TOKEN, {"cookie": COOKIE})
    logger.log(level, "kwargs %(token)s", {"token": TOKEN})
    try:
        _raise(PASSWORD)
    except RuntimeError:
        logger.log(level, "Error processing event queue entry", exc_info=True)
    logger.log(level, "where we were", stack_info=True)
    out = stream.getvalue()
    for secret in (PASSWORD, CLIENT_TOKEN, COOKIE, TOKEN):
        assert secret not in out
    # ... and the rest of each line is still there, traceback included.
    assert "Received event from <redacted uuid>" in out
    assert "RuntimeError: handler failed for <redacted jwt>" in out
    assert "The above exception was the direct cause" in out
    assert "Stack (most recent call last)" in out


def test_a_record_is_redacted_once_and_keeps_no_raw_parts() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "t=%s", (TOKEN,), None)
    redact_record(record)
    assert (record.msg, record.args) == ("t=<redacted jwt>", ())
    clean = record.msg
    redact_record(record)
    assert record.msg is clean


def test_a_message_whose_arguments_do_not_fit_is_still_redacted() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s %s", (TOKEN,), None)
    redact_record(record)
    assert TOKEN not in record.getMessage() and "did not fit" in record.getMessage()


def test_a_huge_record_is_cut_without_leaving_a_piece_of_a_secret() -> None:
    filler = "x " * 5_990  # the head ends inside the token
    text = filler + TOKEN + " " + "y " * 20_000 + f"\nValueError: bad {TOKEN}\nKeyError: the end"
    out = REDACT(bounded(text))
    assert len(out) < MAX_RECORD_CHARS + 100
    assert "characters cut" in out and out.endswith("bad <redacted jwt>\nKeyError: the end")
    for piece in (TOKEN[i : i + 12] for i in range(0, len(TOKEN) - 12, 6)):
        assert piece not in out


# --- repeats ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_same_line_is_written_per_key_times_per_window_then_summarised() -> None:
    clock = Clock()
    limiter = RepeatLimiter(per_key=10, window=60, clock=clock)
    verdicts = [limiter.check("junk", "junk line") for _ in range(200)]
    assert sum(v.write for v in verdicts) == 10
    assert [v.last for v in verdicts].index(True) == 9
    assert all(not v.summaries for v in verdicts)
    clock.now += 61
    after = limiter.check("other", "another line")
    assert after.write and after.summaries == ("suppressed 190 similar lines in 60 s: junk line",)
    assert limiter.check("junk", "junk line").write  # a new window


def test_junk_varied_on_purpose_is_bounded_by_its_family() -> None:
    limiter = RepeatLimiter(per_key=10, per_family=100, clock=Clock())
    written = sum(limiter.check(f"junk {i}", "x", family="reflex").write for i in range(1000))
    assert written == 100
    assert limiter.check("app line", "y").write  # the app's own lines have no family


def test_the_number_of_windows_is_capped() -> None:
    limiter = RepeatLimiter(per_key=3, max_keys=50, clock=Clock())
    written = sum(limiter.check(f"line {i}", "x").write for i in range(10_000))
    assert written == 50 + 3  # 50 keys, then one shared overflow budget
    assert len(limiter._windows) == 51


def _record(name: str, level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, (), None)


def test_lines_of_the_app_are_similar_only_when_identical() -> None:
    one = repeat_key(_record("onboard.audit", logging.INFO, "audit event=signin user=1"))
    two = repeat_key(_record("onboard.audit", logging.INFO, "audit event=signin user=2"))
    assert one != two and one[1] is None


def test_library_lines_differing_only_in_ids_and_values_are_similar() -> None:
    one = repeat_key(_record("reflex.app", logging.WARNING, "Received from session Ab3x: 'a'"))
    two = repeat_key(_record("reflex.app", logging.WARNING, "Received from session Zq9y: 'b'"))
    other = repeat_key(_record("reflex.app", logging.WARNING, "Frontend version mismatch"))
    assert one == two != other
    assert one[1] == "reflex"
    assert repeat_key(_record("reflex.app", logging.INFO, "x"))[1] is None


def test_the_guard_writes_a_notice_then_a_summary(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    logger = logging.getLogger(f"test.logs.{uuid.uuid4().hex}")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogGuard(RepeatLimiter(per_key=5, clock=clock)))
    logger.addHandler(handler)
    for _ in range(200):
        logger.warning("No registered handler found for event: %s", CLIENT_TOKEN)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1].endswith("held back for up to 60 s)")
    clock.now += 60
    with caplog.at_level(logging.WARNING, logger="onboard.logs"):
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records if r.name == "onboard.logs"] == [
        "suppressed 195 similar lines in 60 s: "
        "No registered handler found for event: <redacted uuid>"
    ]
    assert stream.getvalue().splitlines()[-1] == "something else"


# --- install() in a process of its own ----------------------------------------------------

INSTALLED = textwrap.dedent(
    """
    import logging, sys
    # Reflex's console sink exists before the app module is imported (the CLI made it).
    reflex = logging.getLogger("reflex")
    reflex.propagate = False
    reflex_sink = logging.StreamHandler(sys.stdout)
    reflex.addHandler(reflex_sink)

    from onboard_app import logs
    logs.install()
    import engineio
    engineio.AsyncServer(async_mode="asgi")  # as rx.App() makes it, after install()

    key, token, client = sys.argv[1:4]
    logging.getLogger("onboard.auth").info("user %s signed in", 12)
    logging.getLogger("onboard.auth").debug("not at INFO: %s", 1)
    logging.getLogger("reflex.app").warning("Received event data: %r", {"password": "pw-1"})
    for _ in range(50):
        logging.getLogger("reflex.state").error("queue entry for token %s", client)
    try:
        raise KeyError(f"No registered handler found for {token}")
    except KeyError:
        logging.getLogger("engineio.server").exception("message async handler error")
    late = logging.StreamHandler(sys.stdout)  # a handler attached after install()
    logging.getLogger("late").addHandler(late)
    logging.getLogger("late").warning("configured with %s", key)
    for _ in range(30):
        logging.getLogger("late").warning("again")
    logging.getLogger("onboard.x").warning("%s %s", "one argument for two")
    """
)


def test_install_makes_the_app_lines_reach_the_log_and_nothing_secret(tmp_path: Path) -> None:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONBOARD_", "REFLEX_"))}
    env.update(
        ONBOARD_SIGNING_KEY=f"k1:{key}",
        ONBOARD_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, "-c", INSTALLED, key, TOKEN, CLIENT_TOKEN],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out, err = done.stdout, done.stderr
    for secret in (key, TOKEN, CLIENT_TOKEN, "pw-1"):
        assert secret not in out + err
    # The app's INFO line, formatted, on stderr; DEBUG stays out.
    assert "INFO onboard.auth[" in err and "]: user 12 signed in" in err
    assert "not at INFO" not in err
    # Reflex's own sink got the guard: redacted, and the repeats bounded.
    assert "Received event data: {'password': '<redacted>'}" in out
    assert out.count("queue entry for token <redacted uuid>") == 10
    assert "held back for up to 60 s" in out
    # engineio's error reached our handler once (it did not add its bare handler).
    assert err.count("message async handler error") == 1
    assert "KeyError: 'No registered handler found for <redacted jwt>'" in err
    # A handler attached later still sees only redacted records.
    assert "configured with <redacted>" in out
    assert out.count("again") == 10
    assert "one argument for two" in err and "did not fit" in err


@pytest.mark.parametrize(
    "state",
    [
        "Eu0sP6Dg9bNddWg80esaT5VdBpC4hHfu2rpjwtNTD_k",  # "jwt" inside the value
        "MgFA4WUgGZwfLRKKCHN4GnnI0Gta1l_JwtGClNskWbg",  # "_Jwt" inside the value
        "x-otp",
    ],
)
def test_a_field_name_inside_a_random_value_hides_no_later_secret(state: str) -> None:
    """Random values can hold a field word; the next field's value is still redacted."""
    verifier = "-xpjKkxguXC30K7xdNQwQQYXYgXjuMppek7WOTK1XzrqvBad3M-QE0WujsLZz33U"
    text = f"_pending={{'state': {state!r}, 'code_verifier': {verifier!r}}}"
    out = Redactor()(text)
    assert verifier not in out and (len(state) < 8 or state not in out), out
