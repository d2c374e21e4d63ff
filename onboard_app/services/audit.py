"""The audit trail: one structured line per security event, to logger ``onboard.audit``.

``audit("signin", user_id=12, method="password", client="203.0.113.7")`` writes::

    audit event=signin user=12 method=password client=203.0.113.7

at INFO. Keys come in a fixed order (event, user, reason, the extra fields as given,
client); values that are not plain words are JSON-quoted, so a value sent by a client
cannot forge a second line or another field. An audit line never carries a secret: field
names that would hold one are refused, and values that look like one (a JWT, a client
token, a configured key) are written as ``<omitted>``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Final, Literal, get_args

from onboard_app.logs import looks_secret

log = logging.getLogger("onboard.audit")

AuditEvent = Literal[
    "signup",
    "signin",
    "signin_failed",
    "throttled",
    "finish",
    "logout",
    "token_rejected",
    "reauth_failed",
    "email_change_requested",
    "email_changed",
    "password_changed",
    "account_deleted",
    "passkey_added",
    "passkey_removed",
    "two_factor_enabled",
    "two_factor_disabled",
]
#: Every event name the audit trail knows.
AUDIT_EVENTS: Final = frozenset(get_args(AuditEvent))
#: What a value that looks like a secret is written as.
OMITTED: Final = "<omitted>"
#: Longer values are cut (a reason or a client address has no business being longer).
MAX_VALUE_CHARS: Final = 200

_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PLAIN: Final = re.compile(r"[A-Za-z0-9._:@/+-]+")
# ``event``, ``reason`` and ``client`` are parameters; ``user`` is how ``user_id`` is written.
_RESERVED: Final = frozenset({"user"})
# Field names under which a caller could only mean to pass a secret.
_SECRET_NAME: Final = re.compile(
    r"pass|secret|token|jwt|cookie|authori[sz]ation|code|state|nonce|verifier|key|otp"
)

Value = str | int | bool | None


def _text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if looks_secret(text):
        return OMITTED
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "..."
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


def audit(
    event: AuditEvent,
    *,
    user_id: int | None = None,
    reason: str | None = None,
    client: str | None = None,
    **fields: Value,
) -> None:
    """Write one audit line to ``onboard.audit`` at INFO.

    Args:
        event: One of :data:`AUDIT_EVENTS`.
        user_id: The user concerned, if known.
        reason: Why, for refusals (``wrong_password``, ``expired``...).
        client: The client address.
        **fields: Further facts (``method="password"``); ``None`` values are left out.

    Raises:
        ValueError: For an unknown event, or a field name that is malformed, reserved or
            names a secret (programming errors: an audit line never carries a secret).
    """
    if event not in AUDIT_EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    for name in fields:
        if not _NAME.fullmatch(name) or name in _RESERVED:
            raise ValueError(f"audit field name {name!r} is malformed or reserved")
        if _SECRET_NAME.search(name):
            raise ValueError(f"audit field {name!r} would hold a secret; log an id instead")
    pairs: list[tuple[str, Value]] = [
        ("event", event),
        ("user", user_id),
        ("reason", reason),
        *fields.items(),
        ("client", client),
    ]
    log.info("audit %s", " ".join(f"{k}={_text(v)}" for k, v in pairs if v is not None))
