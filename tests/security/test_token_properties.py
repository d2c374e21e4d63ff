"""Properties of mint/verify over random claims and random byte-level mutations (hypothesis).

1. For any user (id, token version, step, flow version) and any login and mint time within
   the bounds the app allows, ``verify_session_token`` returns exactly the claims that were
   minted.
2. For any mutation of a valid token (flip, insert or delete characters anywhere, swap or
   duplicate segments, re-encode the header or payload differently), verification never
   raises and never returns claims other than the minted ones: either the very same claims
   (a mutation that does not change what is signed, e.g. unused bits of the last base64
   character of the signature) or a ``TokenRejected``.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onboard_app.services.onboarding import COMPLETED, wizard_steps
from onboard_app.services.tokens import (
    SessionClaims,
    TokenRejected,
    mint_session_token,
    verify_session_token,
)
from onboard_app.settings import SigningKey
from tests.conftest import make_settings

NOW_MIN, NOW_MAX = 1_000_000_000, 4_000_000_000
CURRENT = SigningKey("kid2", secrets.token_bytes(32))
RETIRED = SigningKey("kid1", secrets.token_bytes(32), not_after=NOW_MAX + 10**6)
#: What verification sees: the current key plus one retired key still in its grace period.
KEYRING = make_settings(signing_keys=(CURRENT, RETIRED))
#: What minting sees, per key (tokens are always signed with the first key).
MINTERS = {
    CURRENT.kid: KEYRING,
    RETIRED.kid: make_settings(signing_keys=(SigningKey(RETIRED.kid, RETIRED.secret),)),
}
BOUNDED = settings(
    max_examples=250,
    deadline=timedelta(milliseconds=500),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Subject:
    id: int
    token_version: int
    onboarding_step: str
    flow_version: int


@st.composite
def minted(draw: st.DrawFn) -> tuple[str, SessionClaims, int]:
    """A token minted from random claims, the claims it must verify to, and a 'now'."""
    user = Subject(
        id=draw(st.integers(min_value=1, max_value=10**18 - 1)),
        token_version=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        onboarding_step=draw(st.sampled_from([*wizard_steps(), COMPLETED])),
        flow_version=draw(st.integers(min_value=0, max_value=2**63 - 1)),
    )
    cfg = KEYRING
    auth_time = draw(st.integers(min_value=NOW_MIN, max_value=NOW_MAX))
    # Minted somewhere within the absolute session lifetime ...
    issued = draw(st.integers(min_value=auth_time, max_value=auth_time + cfg.session_max_age))
    kid = draw(st.sampled_from([CURRENT.kid, RETIRED.kid]))
    token = mint_session_token(user, MINTERS[kid], auth_time=auth_time, now=issued)
    expires = min(issued + cfg.token_ttl, auth_time + cfg.session_max_age)
    payload = json.loads(_unb64(token.split(".")[1]))
    expected = SessionClaims(
        user_id=user.id,
        token_version=user.token_version,
        onboarding_step=user.onboarding_step,
        flow_version=user.flow_version,
        jti=payload["jti"],
        issued_at=issued,
        expires_at=expires,
        auth_time=auth_time,
        kid=kid,
    )
    # ... and verified at any moment it is still valid.
    latest = min(expires + cfg.leeway, auth_time + cfg.session_max_age)
    now = draw(st.integers(min_value=issued, max_value=max(issued, latest)))
    return token, expected, now


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@given(minted())
@BOUNDED
def test_verification_returns_exactly_the_minted_claims(case: tuple[str, SessionClaims, int]):
    token, expected, now = case
    assert verify_session_token(token, KEYRING, now=now) == expected


# --- mutations ------------------------------------------------------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JUNK = st.sampled_from(list(ALPHABET + "=.+/ \x00\n\\\"'{}é\U0001f600"))


def _reencode_segment(segment: str, how: str) -> str:
    raw = _unb64(segment)
    if how == "padded":
        return base64.urlsafe_b64encode(raw).decode()
    if how == "standard":
        return base64.b64encode(raw).decode().rstrip("=")
    value: Any = json.loads(raw)
    if how == "spaced":
        return _b64(json.dumps(value, indent=1).encode())
    if how == "reordered" and isinstance(value, dict):
        return _b64(json.dumps(dict(reversed(list(value.items())))).encode())
    if how == "alg-lower" and isinstance(value, dict):
        return _b64(json.dumps({**value, "alg": str(value.get("alg", "")).lower()}).encode())
    if how == "alg-none" and isinstance(value, dict):
        return _b64(json.dumps({**value, "alg": "none"}).encode())
    if how == "duplicate-key":
        text = json.dumps(value)
        return _b64((text[:-1] + ', "onb": "completed"}').encode())
    if how == "duplicate-fv":
        text = json.dumps(value)
        return _b64((text[:-1] + ', "fv": 99}').encode())
    return segment


@st.composite
def mutation(draw: st.DrawFn, token: str) -> str:
    kind = draw(
        st.sampled_from(
            ["flip", "insert", "delete", "swap", "duplicate", "drop", "reencode", "truncate"]
        )
    )
    parts = token.split(".")
    if kind == "flip":
        i = draw(st.integers(0, len(token) - 1))
        return token[:i] + draw(JUNK) + token[i + 1 :]
    if kind == "insert":
        i = draw(st.integers(0, len(token)))
        return token[:i] + draw(st.text(JUNK, min_size=1, max_size=4)) + token[i:]
    if kind == "delete":
        i = draw(st.integers(0, len(token) - 1))
        n = draw(st.integers(1, 4))
        return token[:i] + token[i + n :]
    if kind == "swap":
        order = draw(st.permutations([0, 1, 2]))
        return ".".join(parts[i] for i in order)
    if kind == "duplicate":
        # One segment copied over another (or added as a fourth).
        i, j = draw(st.integers(0, 2)), draw(st.integers(0, 3))
        copied = (
            [*parts, parts[i]]
            if j == 3
            else [parts[i] if k == j else p for k, p in enumerate(parts)]
        )
        return ".".join(copied)
    if kind == "drop":
        i = draw(st.integers(0, 2))
        kept = parts[:i] + parts[i + 1 :]
        return ".".join(kept) + ("." if draw(st.booleans()) else "")
    if kind == "truncate":
        return token[: draw(st.integers(0, len(token) - 1))]
    which = draw(st.integers(0, 1))
    how = draw(
        st.sampled_from(
            [
                "padded",
                "standard",
                "spaced",
                "reordered",
                "alg-lower",
                "alg-none",
                "duplicate-key",
                "duplicate-fv",
            ]
        )
    )
    parts[which] = _reencode_segment(parts[which], how)
    return ".".join(parts)


@given(st.data(), minted())
@BOUNDED
def test_mutated_tokens_never_verify_to_other_claims(
    data: st.DataObject, case: tuple[str, SessionClaims, int]
) -> None:
    token, expected, now = case
    mutated = data.draw(mutation(token))
    try:
        result = verify_session_token(mutated, KEYRING, now=now)
    except Exception as exc:  # pragma: no cover - the property failing
        raise AssertionError(f"verification raised {exc!r} for {mutated!r}") from exc
    assert isinstance(result, TokenRejected) or result == expected, (mutated, result)
    if mutated == token:
        assert result == expected


@given(st.data(), minted())
@BOUNDED
def test_a_token_under_a_key_it_was_not_signed_with_is_rejected(
    data: st.DataObject, case: tuple[str, SessionClaims, int]
) -> None:
    """Swapping only the ``kid`` header (re-encoded) never lets the other key's claims in."""
    token, _, now = case
    header = json.loads(_unb64(token.split(".")[0]))
    other = RETIRED.kid if header["kid"] == CURRENT.kid else CURRENT.kid
    parts = token.split(".")
    parts[0] = _b64(json.dumps({**header, "kid": other}).encode())
    assert isinstance(verify_session_token(".".join(parts), KEYRING, now=now), TokenRejected)
