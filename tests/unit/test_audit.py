"""The audit trail: one parseable line per event, user id and reason, never a secret."""

from __future__ import annotations

import ast
import logging
import re
import secrets
import uuid
from pathlib import Path
from typing import Any, get_args

import jwt
import pytest

import onboard_app
import onboard_app.logs as logs
from onboard_app.logs import Redactor, settings_secrets
from onboard_app.services.audit import AUDIT_EVENTS, OMITTED, AuditEvent, audit
from onboard_app.settings import SigningKey
from tests.conftest import make_settings

KEY = secrets.token_bytes(32)
TOKEN = jwt.encode({"sub": "12", "jti": uuid.uuid4().hex}, KEY, algorithm="HS256")
APP = Path(onboard_app.__file__).parent
PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def lines(caplog: pytest.LogCaptureFixture, **kwargs: Any) -> list[str]:
    """Call audit() and return what reached ``onboard.audit`` at INFO."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="onboard.audit"):
        audit(**kwargs)
    found = [r for r in caplog.records if r.name == "onboard.audit"]
    assert all(r.levelno == logging.INFO for r in found)
    return [r.getMessage() for r in found]


def fields(line: str) -> list[tuple[str, str]]:
    """A line parsed as ``key=value`` pairs (quoted values as written)."""
    assert line.startswith("audit ")
    rest = line.removeprefix("audit ")
    pairs = PAIR.findall(rest)
    assert " ".join(f"{k}={v}" for k, v in pairs) == rest
    return pairs


def test_one_line_per_event_in_a_fixed_order(caplog: pytest.LogCaptureFixture) -> None:
    assert lines(caplog, event="signin", user_id=12, method="password", client="203.0.113.7") == [
        "audit event=signin user=12 method=password client=203.0.113.7"
    ]
    assert lines(
        caplog, event="signin_failed", reason="wrong_password", client="2001:db8::7", attempts=3
    ) == ["audit event=signin_failed reason=wrong_password attempts=3 client=2001:db8::7"]
    assert lines(caplog, event="logout", user_id=5, everywhere=True, forced=None) == [
        "audit event=logout user=5 everywhere=true"
    ]


@pytest.mark.parametrize("event", sorted(AUDIT_EVENTS))
def test_every_event_of_the_issue_is_known(
    event: AuditEvent, caplog: pytest.LogCaptureFixture
) -> None:
    assert lines(caplog, event=event, user_id=1) == [f"audit event={event} user=1"]


def literals(node: ast.expr | None) -> list[str]:
    """The event names an argument spells: a literal, or a choice between literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return literals(node.body) + literals(node.orelse)
    return []


def called_events() -> set[str]:
    """The event names of every ``audit(...)`` call in the app's code."""
    called: set[str] = set()
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "audit":
                event = node.args[0] if node.args else None
                event = next((k.value for k in node.keywords if k.arg == "event"), event)
                names = literals(event)
                assert names, f"{path}:{node.lineno}: the event is not spelled out"
                called.update(names)
    return called


def test_the_events_are_the_ones_the_state_layer_calls() -> None:
    assert called_events() == set(get_args(AuditEvent))


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit event"):
        audit("signed_in")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    ["password", "new_password", "token", "client_token", "jti_token", "code", "oauth_state",
     "nonce", "code_verifier", "cookie", "authorization", "signing_key", "client_secret", "jwt"],
)  # fmt: skip
def test_a_field_named_for_a_secret_is_refused(name: str) -> None:
    named: dict[str, Any] = {name: "x"}
    with pytest.raises(ValueError, match="secret"):
        audit("signin", user_id=1, **named)


@pytest.mark.parametrize("name", ["user", "Method", "a-b", "1st", "x" * 40])
def test_reserved_and_malformed_field_names_are_refused(name: str) -> None:
    named: dict[str, Any] = {name: "x"}
    with pytest.raises(ValueError, match="malformed or reserved"):
        audit("signin", **named)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("reason", TOKEN),
        ("reason", f"bad token {TOKEN}"),
        ("client", str(uuid.uuid4())),
        ("provider", f"Bearer {secrets.token_urlsafe(24)}"),
        ("provider", f"cookie: onboard_session={secrets.token_urlsafe(24)}"),
        ("provider", f"postgresql://u:{secrets.token_hex(6)}@db/x"),
    ],
)
def test_values_that_look_like_secrets_are_omitted(
    where: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    kwargs: dict[str, Any] = {"event": "token_rejected", "user_id": 3, where: value}
    (line,) = lines(caplog, **kwargs)
    assert value not in line
    assert (where, OMITTED) in fields(line)


def test_a_configured_key_is_omitted(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(signing_keys=(SigningKey("k1", KEY),))
    monkeypatch.setattr(logs, "_redactor", Redactor(settings_secrets(settings)))
    (line,) = lines(caplog, event="signin_failed", reason=KEY.hex())
    assert KEY.hex() not in line and f"reason={OMITTED}" in line


def test_a_value_cannot_forge_another_line_or_field(caplog: pytest.LogCaptureFixture) -> None:
    forged = 'x"\naudit event=signin user=1 client=1.2.3.4 reason="y'
    (line,) = lines(caplog, event="signin_failed", reason=forged, client="203.0.113.9")
    assert "\n" not in line
    assert [k for k, _ in fields(line)] == ["event", "reason", "client"]
    assert dict(fields(line))["client"] == "203.0.113.9"


def test_odd_text_is_quoted_and_long_text_cut(caplog: pytest.LogCaptureFixture) -> None:
    (line,) = lines(caplog, event="signup", reason="lone \ud800 surrogate", provider="a b")
    assert line == r'audit event=signup reason="lone \ud800 surrogate" provider="a b"'
    (line,) = lines(caplog, event="signup", reason="r" * 1000)
    assert line == "audit event=signup reason=" + "r" * 200 + "..."
