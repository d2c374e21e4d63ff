"""Session tokens: minting and verification (every token case of the security catalogue).

pyjwt checks ``exp``/``nbf``/``iat`` against the wall clock, so tokens that must look old or
young are minted with a ``now`` shifted from the real time instead of waiting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from onboard_app.services import tokens
from onboard_app.services.onboarding import COMPLETED
from onboard_app.services.tokens import (
    ALGORITHM,
    FLOW_VERSION_UNKNOWN,
    MAX_TOKEN_LENGTH,
    REQUIRED_CLAIMS,
    TOKEN_TYPE,
    Rejection,
    SessionClaims,
    TokenRejected,
    mint_session_token,
    needs_refresh,
    verify_session_token,
)
from onboard_app.settings import Settings, SigningKey
from tests.conftest import KEY, make_settings


@dataclass
class Subject:
    id: int | None = 42
    token_version: int = 3
    onboarding_step: str = "interests"
    flow_version: int = 1  # completed version 1, now taken through a step added since


def real_now() -> int:
    return int(time.time())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def unb64json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def sign(
    header: Any, payload: Any, secret: bytes = KEY.secret, digest: Any = hashlib.sha256
) -> str:
    """A compact JWS with any header and payload, HMAC-signed by hand (no pyjwt checks)."""
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(mac)}"


def good_header(**changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": KEY.kid}
    header.update(changes)
    return header


def good_payload(settings: Settings, now: int | None = None, **changes: Any) -> dict[str, Any]:
    now = real_now() if now is None else now
    payload: dict[str, Any] = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": "42",
        "iat": now,
        "nbf": now,
        "exp": now + settings.token_ttl,
        "jti": secrets.token_hex(16),
        "auth_time": now,
        "ver": 3,
        "onb": "interests",
        "fv": 1,
    }
    payload.update(changes)
    return payload


def rejected(result: object, *reasons: Rejection) -> bool:
    if not isinstance(result, TokenRejected):
        return False
    return not reasons or result.reason in reasons


SIGNATURE_FAILURE = (Rejection.MALFORMED, Rejection.INVALID)


@pytest.fixture
def cfg() -> Settings:
    return make_settings()


# --- round trip -----------------------------------------------------------------------------


def test_round_trip_claims_exactly_as_minted(cfg: Settings) -> None:
    now = real_now()
    token = mint_session_token(Subject(), cfg, now=now)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "onboard-session+jwt", "kid": KEY.kid}
    payload = unb64json(token.split(".")[1])
    assert set(payload) == {*REQUIRED_CLAIMS, "fv"}
    assert payload["sub"] == "42"
    assert payload["ver"] == 3
    assert payload["onb"] == "interests"
    assert payload["fv"] == 1
    assert payload["auth_time"] == now
    assert payload["iat"] == payload["nbf"] == now
    assert payload["exp"] == now + cfg.token_ttl
    assert payload["iss"] == cfg.token_issuer
    assert payload["aud"] == cfg.token_audience

    claims = verify_session_token(token, cfg, now=now)
    assert claims == SessionClaims(
        user_id=42,
        token_version=3,
        onboarding_step="interests",
        flow_version=1,
        jti=payload["jti"],
        issued_at=now,
        expires_at=now + cfg.token_ttl,
        auth_time=now,
        kid=KEY.kid,
    )
    assert claims  # a successful verification is truthy


def test_round_trip_keeps_given_auth_time(cfg: Settings) -> None:
    now = real_now()
    token = mint_session_token(
        Subject(onboarding_step="completed", flow_version=2), cfg, auth_time=now - 500, now=now
    )
    claims = verify_session_token(token, cfg, now=now)
    assert isinstance(claims, SessionClaims)
    assert claims.auth_time == now - 500
    assert claims.issued_at == now
    assert claims.onboarding_step == COMPLETED
    assert claims.flow_version == 2


@pytest.mark.parametrize("flow_version", [0, 1, 7])
def test_fv_says_the_flow_version_of_the_row(cfg: Settings, flow_version: int) -> None:
    now = real_now()
    token = mint_session_token(Subject(flow_version=flow_version), cfg, now=now)
    assert unb64json(token.split(".")[1])["fv"] == flow_version
    claims = verify_session_token(token, cfg, now=now)
    assert isinstance(claims, SessionClaims)
    assert claims.flow_version == flow_version


def test_a_step_added_through_the_spec_is_a_valid_onb(cfg: Settings, flow_v2: object) -> None:
    now = real_now()
    token = mint_session_token(Subject(onboarding_step="workplace"), cfg, now=now)
    claims = verify_session_token(token, cfg, now=now)
    assert isinstance(claims, SessionClaims)
    assert claims.onboarding_step == "workplace"


def test_jti_is_unique_per_mint(cfg: Settings) -> None:
    now = real_now()
    jtis = set()
    for _ in range(50):
        claims = verify_session_token(mint_session_token(Subject(), cfg, now=now), cfg, now=now)
        assert isinstance(claims, SessionClaims)
        jtis.add(claims.jti)
    assert len(jtis) == 50


def test_no_secret_or_pii_in_payload(cfg: Settings) -> None:
    token = mint_session_token(Subject(), cfg)
    payload = unb64json(token.split(".")[1])
    text = json.dumps(payload)
    assert KEY.secret.hex() not in text
    assert "@" not in text


def test_rejection_is_falsy() -> None:
    assert not TokenRejected(Rejection.INVALID)


# --- algorithm ------------------------------------------------------------------------------


def test_alg_none_rejected(cfg: Settings) -> None:
    payload = good_payload(cfg)
    token = f"{b64json(good_header(alg='none'))}.{b64json(payload)}."
    assert rejected(verify_session_token(token, cfg), Rejection.INVALID)
    # also "none" with the signature of a genuine token glued on
    genuine = sign(good_header(), payload)
    forged = f"{b64json(good_header(alg='none'))}.{b64json(payload)}.{genuine.split('.')[2]}"
    assert rejected(verify_session_token(forged, cfg))


def test_hs512_rejected_even_with_the_right_key(cfg: Settings) -> None:
    token = sign(good_header(alg="HS512"), good_payload(cfg), digest=hashlib.sha512)
    assert rejected(verify_session_token(token, cfg), Rejection.INVALID)


def test_rs256_header_with_hmac_signature_rejected(cfg: Settings) -> None:
    token = sign(good_header(alg="RS256"), good_payload(cfg))
    assert rejected(verify_session_token(token, cfg), Rejection.INVALID)


@pytest.mark.parametrize("alg", [None, "hs256", "HS256 ", "", 256, ["HS256"]])
def test_missing_or_odd_alg_rejected(cfg: Settings, alg: Any) -> None:
    header = good_header()
    if alg is None:
        del header["alg"]
    else:
        header["alg"] = alg
    assert rejected(verify_session_token(sign(header, good_payload(cfg)), cfg))


def test_control_genuine_hand_signed_token_accepted(cfg: Settings) -> None:
    """The hand-made tokens below are only meaningful if an unaltered one passes."""
    claims = verify_session_token(sign(good_header(), good_payload(cfg)), cfg)
    assert isinstance(claims, SessionClaims)
    assert claims.user_id == 42


# --- signature ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", "1"),
        ("ver", 4),
        ("onb", "completed"),
        ("fv", 2),
        ("exp", 9_999_999_999),
        ("auth_time", 1),
    ],
)
def test_edited_payload_with_old_signature_rejected(cfg: Settings, claim: str, value: Any) -> None:
    now = real_now()
    token = mint_session_token(Subject(), cfg, now=now)
    header_seg, payload_seg, sig = token.split(".")
    payload = unb64json(payload_seg)
    payload[claim] = value
    forged = f"{header_seg}.{b64json(payload)}.{sig}"
    assert rejected(verify_session_token(forged, cfg, now=now), *SIGNATURE_FAILURE)


def test_edited_header_with_old_signature_rejected(cfg: Settings) -> None:
    token = mint_session_token(Subject(), cfg)
    _, payload_seg, sig = token.split(".")
    forged = f"{b64json(good_header(extra='x'))}.{payload_seg}.{sig}"
    assert rejected(verify_session_token(forged, cfg), *SIGNATURE_FAILURE)


def test_wrong_key_same_kid_rejected(cfg: Settings) -> None:
    other = SigningKey(KEY.kid, secrets.token_bytes(32))
    token = mint_session_token(Subject(), make_settings(signing_keys=(other,)))
    assert rejected(verify_session_token(token, cfg), *SIGNATURE_FAILURE)


def test_stripped_or_truncated_signature_rejected(cfg: Settings) -> None:
    token = mint_session_token(Subject(), cfg)
    head, payload, sig = token.split(".")
    for bad in (
        f"{head}.{payload}.",
        f"{head}.{payload}.{sig[:-2]}",
        f"{head}.{payload}.{sig[::-1]}",
    ):
        assert rejected(verify_session_token(bad, cfg), *SIGNATURE_FAILURE)


# --- time claims ----------------------------------------------------------------------------


def test_expired_beyond_leeway_rejected(cfg: Settings) -> None:
    now = real_now()
    # exp = now - leeway - 10: past even with the tolerated skew
    token = mint_session_token(Subject(), cfg, now=now - cfg.token_ttl - cfg.leeway - 10)
    assert rejected(verify_session_token(token, cfg, now=now), Rejection.EXPIRED)


def test_expired_within_leeway_accepted() -> None:
    cfg = make_settings(leeway=30)
    now = real_now()
    # exp = now - 15: expired, but within the 30 s leeway
    token = mint_session_token(Subject(), cfg, now=now - cfg.token_ttl - 15)
    assert isinstance(verify_session_token(token, cfg, now=now), SessionClaims)


def test_expiry_is_judged_at_the_given_now(cfg: Settings) -> None:
    now = real_now()
    token = mint_session_token(Subject(), cfg, now=now)
    later = now + cfg.token_ttl + cfg.leeway + 1
    assert rejected(verify_session_token(token, cfg, now=later), Rejection.EXPIRED)


def test_future_nbf_rejected(cfg: Settings) -> None:
    now = real_now()
    token = sign(good_header(), good_payload(cfg, now, nbf=now + 120))
    assert rejected(verify_session_token(token, cfg, now=now), Rejection.INVALID)


def test_nbf_within_leeway_accepted(cfg: Settings) -> None:
    now = real_now()
    token = sign(good_header(), good_payload(cfg, now, nbf=now + cfg.leeway // 2))
    assert isinstance(verify_session_token(token, cfg, now=now), SessionClaims)


def test_future_iat_rejected(cfg: Settings) -> None:
    now = real_now()
    payload = good_payload(cfg, now, iat=now + 120, auth_time=now)
    assert rejected(verify_session_token(sign(good_header(), payload), cfg, now=now))


def test_auth_time_later_than_iat_rejected(cfg: Settings) -> None:
    now = real_now()
    payload = good_payload(cfg, now, iat=now - 5, auth_time=now)
    assert rejected(
        verify_session_token(sign(good_header(), payload), cfg, now=now), Rejection.INVALID
    )


def test_auth_time_in_future_rejected(cfg: Settings) -> None:
    now = real_now()
    payload = good_payload(cfg, now, iat=now, nbf=now, auth_time=now + 300)
    # auth_time > iat too, so it is rejected either way
    assert rejected(
        verify_session_token(sign(good_header(), payload), cfg, now=now), Rejection.INVALID
    )


def test_lifetime_longer_than_token_ttl_rejected(cfg: Settings) -> None:
    now = real_now()
    too_long = good_payload(cfg, now, exp=now + cfg.token_ttl + 1)
    exact = good_payload(cfg, now, exp=now + cfg.token_ttl)
    assert rejected(
        verify_session_token(sign(good_header(), too_long), cfg, now=now), Rejection.INVALID
    )
    assert isinstance(verify_session_token(sign(good_header(), exact), cfg, now=now), SessionClaims)


def test_absolute_session_lifetime_exceeded() -> None:
    cfg = make_settings(session_max_age=3600, token_ttl=3600, leeway=30)
    now = real_now()
    auth = now - 3600 + 5
    token = mint_session_token(Subject(), cfg, auth_time=auth, now=now)
    # exp is capped at auth_time + session_max_age, 5 s from now
    assert unb64json(token.split(".")[1])["exp"] == auth + 3600
    assert isinstance(verify_session_token(token, cfg, now=now), SessionClaims)
    # 10 s later the session is over (token exp still within leeway of the wall clock)
    assert rejected(verify_session_token(token, cfg, now=now + 10), Rejection.SESSION_EXPIRED)


def test_uncapped_token_of_an_old_session_is_session_expired(cfg: Settings) -> None:
    """A validly signed token whose exp was not capped still dies with the session."""
    now = real_now()
    payload = good_payload(cfg, now, auth_time=now - cfg.session_max_age - 60)
    result = verify_session_token(sign(good_header(), payload), cfg, now=now)
    assert rejected(result, Rejection.SESSION_EXPIRED)


def test_mint_caps_exp_at_session_end() -> None:
    cfg = make_settings(token_ttl=3600, session_max_age=7200)
    now = real_now()
    capped = mint_session_token(Subject(), cfg, auth_time=now - 7000, now=now)
    fresh = mint_session_token(Subject(), cfg, auth_time=now, now=now)
    assert unb64json(capped.split(".")[1])["exp"] == now - 7000 + 7200
    assert unb64json(fresh.split(".")[1])["exp"] == now + 3600


# --- required claims ------------------------------------------------------------------------


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_each_required_claim_missing_rejected(cfg: Settings, claim: str) -> None:
    payload = good_payload(cfg)
    del payload[claim]
    assert rejected(verify_session_token(sign(good_header(), payload), cfg), Rejection.INVALID)


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_each_required_claim_null_rejected(cfg: Settings, claim: str) -> None:
    payload = good_payload(cfg, **{claim: None})
    assert rejected(verify_session_token(sign(good_header(), payload), cfg), Rejection.INVALID)


def test_a_token_from_before_flow_versions_verifies_as_version_unknown(cfg: Settings) -> None:
    """No ``fv``: accepted (no forced re-login at the upgrade), never equal to a row's."""
    payload = good_payload(cfg)
    del payload["fv"]
    claims = verify_session_token(sign(good_header(), payload), cfg)
    assert not isinstance(claims, TokenRejected)
    assert claims.flow_version == FLOW_VERSION_UNKNOWN


@pytest.mark.parametrize("value", [None, -2, -(2**40)])
def test_a_null_or_negative_flow_version_is_rejected(cfg: Settings, value: Any) -> None:
    payload = good_payload(cfg, fv=value)
    assert rejected(verify_session_token(sign(good_header(), payload), cfg), Rejection.INVALID)


def _wrong_types() -> list[tuple[str, Any]]:
    now = real_now()
    return [
        ("sub", 42),
        ("sub", "abc"),
        ("sub", "-1"),
        ("sub", "4.2"),
        ("sub", " 42"),
        ("sub", ""),
        ("sub", "\u0664\u0662"),  # Arabic-Indic digits: isdigit() but not ASCII
        ("sub", "\uff14\uff12"),  # full-width digits
        ("sub", "9" * 19),  # larger than any 64-bit id
        ("sub", "9" * 400),
        ("sub", True),
        ("sub", ["42"]),
        ("ver", "3"),
        ("ver", True),
        ("ver", 3.0),
        ("ver", [3]),
        ("ver", {"v": 3}),
        ("auth_time", str(now)),
        ("auth_time", True),
        ("auth_time", float(now)),
        ("iat", str(now)),
        ("iat", float(now)),
        ("iat", "soon"),
        ("nbf", "soon"),
        ("nbf", [now]),
        ("exp", "never"),
        ("exp", float(now + 60)),
        ("exp", str(now + 60)),
        ("exp", True),
        ("exp", 10**400),
        ("jti", 5),
        ("jti", ""),
        ("jti", "x" * 65),
        ("jti", ["a"]),
        ("onb", "admin"),
        ("onb", "PROFILE"),
        ("onb", 1),
        ("onb", ["profile"]),
        ("onb", "workplace"),  # a step of a flow not deployed
        ("fv", "1"),
        ("fv", True),
        ("fv", 1.0),
        ("fv", [1]),
        ("fv", {"v": 1}),
        ("iss", 5),
        ("iss", ["onboard"]),
        ("iss", "onb"),  # substring of the issuer (CVE-2024-53861 class)
        ("aud", 5),
        ("aud", []),
        ("aud", {"aud": "onboard-app"}),
        ("aud", [5]),
    ]


@pytest.mark.parametrize(("claim", "value"), _wrong_types(), ids=lambda v: repr(v)[:20])
def test_claim_of_wrong_type_or_value_rejected(cfg: Settings, claim: str, value: Any) -> None:
    payload = good_payload(cfg, **{claim: value})
    result = verify_session_token(sign(good_header(), payload), cfg)
    # exp=True is read by pyjwt as 1 (EXPIRED); every other case is INVALID or MALFORMED
    assert rejected(result, Rejection.INVALID, Rejection.MALFORMED, Rejection.EXPIRED)


def test_largest_accepted_sub_fits_in_a_bigint(cfg: Settings) -> None:
    claims = verify_session_token(sign(good_header(), good_payload(cfg, sub="9" * 18)), cfg)
    assert isinstance(claims, SessionClaims)
    assert claims.user_id == 10**18 - 1 < 2**63


@pytest.mark.parametrize("iss", ["other", "onboard2", "https://onboard", "Onboard"])
def test_wrong_iss_rejected(cfg: Settings, iss: str) -> None:
    payload = good_payload(cfg, iss=iss)
    assert rejected(verify_session_token(sign(good_header(), payload), cfg), Rejection.INVALID)


@pytest.mark.parametrize("aud", ["other-app", "onboard", ["other-app"], ["onboard-ap"]])
def test_wrong_aud_rejected(cfg: Settings, aud: Any) -> None:
    payload = good_payload(cfg, aud=aud)
    assert rejected(verify_session_token(sign(good_header(), payload), cfg), Rejection.INVALID)


def test_aud_list_containing_ours_is_accepted(cfg: Settings) -> None:
    """RFC 7519 allows an aud array; pyjwt (non-strict) accepts one that contains ours.

    Only a holder of our HMAC key can produce it, so this documents the behaviour.
    """
    payload = good_payload(cfg, aud=["other-app", cfg.token_audience])
    claims = verify_session_token(sign(good_header(), payload), cfg)
    assert isinstance(claims, SessionClaims)


# --- typ and kid ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ",
    ["JWT", "reset-password+jwt", "email-verify+jwt", "ONBOARD-SESSION+JWT", "", 1, [TOKEN_TYPE]],
)
def test_other_token_type_rejected(cfg: Settings, typ: Any) -> None:
    token = sign(good_header(typ=typ), good_payload(cfg))
    assert rejected(verify_session_token(token, cfg), Rejection.INVALID)


def test_missing_typ_rejected(cfg: Settings) -> None:
    header = good_header()
    del header["typ"]
    assert rejected(verify_session_token(sign(header, good_payload(cfg)), cfg), Rejection.INVALID)


def test_pyjwt_default_token_with_our_key_rejected(cfg: Settings) -> None:
    """A token made by plain ``jwt.encode`` (typ JWT, no kid) with our key is not a session."""
    token = jwt.encode(good_payload(cfg), KEY.secret, algorithm="HS256")
    assert rejected(verify_session_token(token, cfg), Rejection.INVALID)


ODD_KIDS: list[Any] = [
    "unknown",
    "../../etc/passwd",
    "/dev/null",
    "test-1 ",
    "TEST-1",
    "",
    5,
    {"kid": KEY.kid},
    [KEY.kid],
    None,
    "' OR 1=1 --",
]


@pytest.mark.parametrize("kid", ODD_KIDS, ids=repr)
def test_odd_kid_rejected(cfg: Settings, kid: Any) -> None:
    token = sign(good_header(kid=kid), good_payload(cfg))
    assert rejected(verify_session_token(token, cfg), Rejection.INVALID)


def test_missing_kid_rejected(cfg: Settings) -> None:
    header = good_header()
    del header["kid"]
    assert rejected(verify_session_token(sign(header, good_payload(cfg)), cfg), Rejection.INVALID)


# --- garbage and size -----------------------------------------------------------------------

GARBAGE: list[Any] = [
    123,
    0,
    1.5,
    True,
    False,
    b"bytes",
    b"a.b.c",
    bytearray(b"a.b.c"),
    {"token": "a.b.c"},
    ["a", "b", "c"],
    ("a.b.c",),
    object(),
    "a",
    "a.b",
    "a.b.c.d",
    "...",
    "..",
    " ",
    " . . ",
    "\n",
    "a.b.c",
    "\u00e9.\u00e9.\u00e9",
    "\U0001f600.\U0001f600.\U0001f600",
    "\x00.\x00.\x00",
    "eyJ.eyJ.sig",
    "null.null.null",
    f"{b64json([1, 2])}.{b64json({})}.",
    f"{b64json('str')}.{b64json({})}.",
    f"{b64(b'[' * 1500 + b']' * 1500)}.e30.",
    f"{b64(b'not json')}.{b64(b'not json')}.",
]


@pytest.mark.parametrize("token", GARBAGE, ids=lambda v: repr(v)[:30])
def test_garbage_rejected(cfg: Settings, token: Any) -> None:
    result = verify_session_token(token, cfg)
    assert rejected(result, Rejection.MALFORMED, Rejection.INVALID)


@pytest.mark.parametrize("token", [None, ""])
def test_absent_token_is_missing(cfg: Settings, token: Any) -> None:
    assert rejected(verify_session_token(token, cfg), Rejection.MISSING)


def test_whitespace_around_a_genuine_token_is_not_silently_accepted(cfg: Settings) -> None:
    token = mint_session_token(Subject(), cfg)
    for variant in (f" {token}", f"{token}\n", f"{token}.", f"Bearer {token}"):
        assert rejected(verify_session_token(variant, cfg))


def _sized_token(cfg: Settings, length: int) -> str:
    """A genuinely signed token of exactly ``length`` characters (padding claim)."""
    base = good_payload(cfg)
    for pad in range(length):
        token = sign(good_header(), {**base, "pad": "x" * pad})
        if len(token) == length:
            return token
        if len(token) > length:
            break
    # header padding shifts lengths by a different step
    for pad in range(length):
        token = sign(good_header(pad="y"), {**base, "pad": "x" * pad})
        if len(token) == length:
            return token
    raise AssertionError(f"cannot build a token of {length} characters")


def test_token_at_max_length_accepted(cfg: Settings) -> None:
    token = _sized_token(cfg, MAX_TOKEN_LENGTH)
    assert isinstance(verify_session_token(token, cfg), SessionClaims)


def test_oversized_token_rejected_before_decoding(
    cfg: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _sized_token(cfg, MAX_TOKEN_LENGTH + 1)
    calls: list[object] = []

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(args)
        raise AssertionError("decoded an oversized token")

    monkeypatch.setattr(tokens.jwt, "get_unverified_header", spy)
    monkeypatch.setattr(tokens.jwt, "decode", spy)
    assert rejected(verify_session_token(token, cfg), Rejection.MALFORMED)
    assert rejected(verify_session_token("a." + "b" * 100_000 + ".c", cfg), Rejection.MALFORMED)
    assert calls == []


# --- key rotation ---------------------------------------------------------------------------


def test_key_rotation_grace_period() -> None:
    now = real_now()
    old_secret, new_secret = secrets.token_bytes(32), secrets.token_bytes(32)
    before = make_settings(signing_keys=(SigningKey("old-1", old_secret),))
    not_after = now + 1000
    after = make_settings(
        signing_keys=(SigningKey("new-2", new_secret), SigningKey("old-1", old_secret, not_after))
    )
    old_token = mint_session_token(Subject(), before, now=now)

    claims = verify_session_token(old_token, after, now=now)
    assert isinstance(claims, SessionClaims)
    assert claims.kid == "old-1"
    assert isinstance(verify_session_token(old_token, after, now=not_after), SessionClaims)
    assert rejected(verify_session_token(old_token, after, now=not_after + 1), Rejection.INVALID)

    # new tokens are signed with the current key
    new_token = mint_session_token(Subject(), after, now=now)
    assert jwt.get_unverified_header(new_token)["kid"] == "new-2"
    new_claims = verify_session_token(new_token, after, now=not_after + 1)
    assert isinstance(new_claims, SessionClaims)
    assert new_claims.kid == "new-2"

    # once the old key is dropped from the keyring its tokens are dead
    dropped = make_settings(signing_keys=(SigningKey("new-2", new_secret),))
    assert rejected(verify_session_token(old_token, dropped, now=now), Rejection.INVALID)


def test_kid_of_one_key_with_signature_of_another_rejected() -> None:
    now = real_now()
    old_secret, new_secret = secrets.token_bytes(32), secrets.token_bytes(32)
    cfg = make_settings(
        signing_keys=(SigningKey("new-2", new_secret), SigningKey("old-1", old_secret, now + 1000))
    )
    # header says the (still accepted) old kid, signature made with the new secret
    token = sign(good_header(kid="old-1"), good_payload(cfg, now), secret=new_secret)
    assert rejected(verify_session_token(token, cfg, now=now), *SIGNATURE_FAILURE)
    # and the other way round
    token = sign(good_header(kid="new-2"), good_payload(cfg, now), secret=old_secret)
    assert rejected(verify_session_token(token, cfg, now=now), *SIGNATURE_FAILURE)


# --- needs_refresh --------------------------------------------------------------------------


def _claims(iat: int, exp: int, auth_time: int) -> SessionClaims:
    return SessionClaims(42, 1, "profile", 0, "j", iat, exp, auth_time, KEY.kid)


def test_needs_refresh_after_refresh_age(cfg: Settings) -> None:
    t = 1_000_000
    claims = _claims(t, t + cfg.token_ttl, t)
    assert not needs_refresh(claims, cfg, now=t)
    assert not needs_refresh(claims, cfg, now=t + cfg.token_refresh_after - 1)
    assert needs_refresh(claims, cfg, now=t + cfg.token_refresh_after)
    assert needs_refresh(claims, cfg, now=t + cfg.token_ttl - 1)


def test_needs_refresh_false_when_capped_by_session_end(cfg: Settings) -> None:
    t = 1_000_000
    auth = t - cfg.session_max_age + 100
    claims = _claims(t - 1000, auth + cfg.session_max_age, auth)
    assert not needs_refresh(claims, cfg, now=t)


# --- mint refusals --------------------------------------------------------------------------


def test_mint_refuses_unsaved_user(cfg: Settings) -> None:
    with pytest.raises(ValueError, match="unsaved"):
        mint_session_token(Subject(id=None), cfg)


@pytest.mark.parametrize("step", ["", "admin", "PROFILE", "done"])
def test_mint_refuses_unknown_step(cfg: Settings, step: str) -> None:
    with pytest.raises(ValueError, match="unknown onboarding step"):
        mint_session_token(Subject(onboarding_step=step), cfg)


def test_mint_without_keys_fails_loudly() -> None:
    from onboard_app.settings import SettingsError

    with pytest.raises(SettingsError, match="ONBOARD_SIGNING_KEY"):
        mint_session_token(Subject(), make_settings(signing_keys=()))


# --- no exception ever escapes ---------------------------------------------------------------


def test_every_bad_input_is_a_token_rejected(cfg: Settings) -> None:
    now = real_now()
    bad: list[Any] = [None, "", *GARBAGE]
    bad.append(f"{b64json(good_header(alg='none'))}.{b64json(good_payload(cfg))}.")
    bad.append(sign(good_header(alg="HS512"), good_payload(cfg), digest=hashlib.sha512))
    bad.append(sign(good_header(alg="RS256"), good_payload(cfg)))
    no_alg = good_header()
    del no_alg["alg"]
    bad.append(sign(no_alg, good_payload(cfg)))
    bad.append(sign(good_header(), good_payload(cfg), secret=secrets.token_bytes(32)))
    bad.append(mint_session_token(Subject(), cfg, now=now - 10 * cfg.token_ttl))
    bad.append(sign(good_header(), good_payload(cfg, nbf=now + 600)))
    bad.append(sign(good_header(), good_payload(cfg, iat=now + 600)))
    bad.append(sign(good_header(), good_payload(cfg, auth_time=now + 1)))
    bad.append(sign(good_header(), good_payload(cfg, exp=now + 10 * cfg.token_ttl)))
    bad.append(sign(good_header(), good_payload(cfg, auth_time=now - 10 * cfg.session_max_age)))
    for claim in REQUIRED_CLAIMS:
        missing = good_payload(cfg)
        del missing[claim]
        bad.append(sign(good_header(), missing))
        bad.append(sign(good_header(), good_payload(cfg, **{claim: None})))
    bad += [sign(good_header(), good_payload(cfg, **{c: v})) for c, v in _wrong_types()]
    bad += [
        sign(good_header(), good_payload(cfg, iss="x")),
        sign(good_header(), good_payload(cfg, aud="x")),
    ]
    bad += [sign(good_header(typ=t), good_payload(cfg)) for t in ("JWT", "reset-password+jwt")]
    bad += [sign(good_header(kid=k), good_payload(cfg)) for k in ODD_KIDS]
    bad += [sign(good_header(crit=["exp"]), good_payload(cfg))]
    bad += [sign(good_header(b64=False), good_payload(cfg))]
    bad += [
        sign(good_header(), [1, 2, 3]),
        sign(good_header(), "payload"),
        sign(good_header(), None),
    ]
    bad += [sign(good_header(), good_payload(cfg, exp=float("inf")))]
    bad += [sign(good_header(), good_payload(cfg, iat=float("nan")))]
    bad.append(_sized_token(cfg, MAX_TOKEN_LENGTH + 1))
    for token in bad:
        result = verify_session_token(token, cfg, now=now)
        assert isinstance(result, TokenRejected), repr(token)[:80]


# --- sid: the device session a token belongs to ---------------------------------------------


def test_sid_names_the_session_and_round_trips(cfg: Settings) -> None:
    session_id = tokens.new_session_id()
    claims = verify_session_token(mint_session_token(Subject(), cfg, session_id=session_id), cfg)
    assert isinstance(claims, SessionClaims)
    assert claims.sid == claims.session_id == session_id


def test_a_token_from_before_sessions_has_its_adopted_session_id(cfg: Settings) -> None:
    claims = verify_session_token(mint_session_token(Subject(), cfg), cfg)
    assert isinstance(claims, SessionClaims) and claims.sid is None
    # One session per old token, the same at every presentation, in the shape of a sid.
    assert claims.session_id == tokens.legacy_session_id(claims.jti)
    assert tokens.is_session_id(claims.session_id)
    assert tokens.legacy_session_id("a") != tokens.legacy_session_id("b")


@pytest.mark.parametrize(
    "sid", [None, "", 5, ["a" * 32], "a" * 15, "a" * 65, "A" * 32, "g" * 32, "../" * 8, "é" * 32]
)
def test_a_malformed_sid_is_rejected(cfg: Settings, sid: Any) -> None:
    token = sign(good_header(), good_payload(cfg, sid=sid))
    assert rejected(verify_session_token(token, cfg), Rejection.INVALID)


def test_minting_refuses_a_malformed_session_id(cfg: Settings) -> None:
    with pytest.raises(ValueError, match="session id"):
        mint_session_token(Subject(), cfg, session_id="not-hex")
    assert len({tokens.new_session_id() for _ in range(100)}) == 100
