"""Passkeys core: options, registration, sign-in, counters, challenges, ownership.

Responses come from a software authenticator with real keys (tests/fakes/authenticator.py),
so every check py_webauthn makes runs on a real signature.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from onboard_app.services import db, passkeys, users
from onboard_app.services.db import get_engine
from onboard_app.services.passkeys import (
    CHALLENGE_TTL,
    MAX_PASSKEYS,
    Challenge,
    PasskeyRefused,
    Purpose,
    authenticate,
    authentication_options,
    clean_name,
    list_passkeys,
    register,
    registration_options,
    relying_party,
    remove_passkey,
    rename_passkey,
)
from onboard_app.services.text import TextRefused
from onboard_app.settings import Settings
from tests.conftest import make_settings
from tests.fakes.authenticator import SoftAuthenticator, b64url, unb64url
from tests.unit.test_email_links import migrate

ORIGIN = "http://localhost:3000"
MIGRATION = "f3a9c27d51b8"  # alembic/versions/f3a9c27d51b8_passkeys.py


@pytest.fixture
def site(db_url: str) -> Settings:
    return make_settings(database_url=db_url, public_url=ORIGIN)


def new_user(url: str, email: str = "pat@example.com") -> int:
    user = users.create_local_user(email, "not-a-real-hash", url)
    assert user.id is not None
    return user.id


def enrol(site: Settings, user_id: int, device: SoftAuthenticator, name: str = "Laptop") -> int:
    start = registration_options(user_id, site, url=site.database_url)
    response = device.create(start.options, ORIGIN)
    return register(user_id, start.challenge, response, name, site, url=site.database_url).id


def sign_in(site: Settings, device: SoftAuthenticator, origin: str = ORIGIN) -> int | None:
    start = authentication_options(site)
    signed_in = authenticate(
        start.challenge, device.get(start.options, origin), site, url=site.database_url
    )
    assert signed_in.user_verified
    return signed_in.user.id


def refusal(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(PasskeyRefused) as caught:
        call()
    return caught.value.reason


# --- the relying party ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "rp_id", "origin"),
    [
        ("http://localhost:3000", "localhost", "http://localhost:3000"),
        ("https://Onboard.Example.COM", "onboard.example.com", "https://onboard.example.com"),
        ("https://example.com:443", "example.com", "https://example.com"),
        ("https://app.example.com:8443/base", "app.example.com", "https://app.example.com:8443"),
    ],
)
def test_the_relying_party_is_the_public_url(public_url: str, rp_id: str, origin: str) -> None:
    party = relying_party(make_settings(public_url=public_url))
    assert (party.id, party.origin) == (rp_id, origin)


# --- options ----------------------------------------------------------------------------------


def test_registration_asks_for_a_discoverable_passkey_and_excludes_the_users_own(
    site: Settings,
) -> None:
    user_id = new_user(site.database_url)
    device = SoftAuthenticator()
    first = registration_options(user_id, site, url=site.database_url)
    options = json.loads(first.options)
    assert options["rp"] == {"id": "localhost", "name": "Onboard"}
    assert options["user"]["name"] == "pat@example.com"
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "preferred",
    }
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    assert options["challenge"] == first.challenge.value
    assert options["timeout"] == CHALLENGE_TTL * 1000
    assert len(unb64url(options["user"]["id"])) == 32
    register(
        user_id,
        first.challenge,
        device.create(first.options, ORIGIN),
        "A",
        site,
        url=site.database_url,
    )

    second = json.loads(registration_options(user_id, site, url=site.database_url).options)
    assert [c["id"] for c in second["excludeCredentials"]] == [
        b64url(device.passkeys[0].credential_id)
    ]
    assert second["excludeCredentials"][0]["transports"] == ["internal", "hybrid"]
    # The same user handle for every passkey of the account; a new one for another account.
    assert second["user"]["id"] == options["user"]["id"]
    other = json.loads(
        registration_options(
            new_user(site.database_url, "sam@example.com"), site, url=site.database_url
        ).options
    )
    assert other["user"]["id"] != options["user"]["id"]
    # The authenticator refuses to make a second passkey of the account (excludeCredentials).
    with pytest.raises(ValueError, match="InvalidStateError"):
        device.create(json.dumps(second), ORIGIN)


def test_sign_in_options_name_no_passkey(site: Settings) -> None:
    start = authentication_options(site)
    options = json.loads(start.options)
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "preferred"
    assert options["rpId"] == "localhost"
    assert options["challenge"] == start.challenge.value
    assert start.challenge.purpose is Purpose.SIGN_IN
    assert authentication_options(site).challenge.value != start.challenge.value


# --- registration and sign-in -----------------------------------------------------------------


def test_a_registered_passkey_signs_its_user_in_and_its_counter_moves(site: Settings) -> None:
    user_id = new_user(site.database_url)
    new_user(site.database_url, "sam@example.com")
    device = SoftAuthenticator()
    passkey_id = enrol(site, user_id, device)
    [listed] = list_passkeys(user_id, site.database_url)
    assert (listed.id, listed.name, listed.last_used_at) == (passkey_id, "Laptop", None)
    assert listed.transports == ("internal", "hybrid")
    assert abs(listed.created_at.timestamp() - time.time()) < 60

    assert sign_in(site, device) == user_id
    assert sign_in(site, device) == user_id
    [used] = list_passkeys(user_id, site.database_url)
    assert used.last_used_at is not None
    with get_engine(site.database_url).connect() as connection:
        stored = connection.execute(sa.text("SELECT sign_count FROM passkeys")).scalar_one()
    assert stored == device.passkeys[0].sign_count == 3


def test_a_sign_in_says_whether_the_user_was_verified(site: Settings) -> None:
    device = SoftAuthenticator()
    enrol(site, new_user(site.database_url), device)
    start = authentication_options(site)
    response = device.get(start.options, ORIGIN, verified=False)
    assert not authenticate(start.challenge, response, site, url=site.database_url).user_verified


def test_a_counter_that_does_not_move_up_is_refused(site: Settings) -> None:
    user_id = new_user(site.database_url)
    device = SoftAuthenticator()
    enrol(site, user_id, device)
    assert sign_in(site, device) == user_id
    # A clone of the authenticator, one use behind.
    device.passkeys[0].sign_count -= 2
    assert refusal(lambda: sign_in(site, device)) == "counter"


def test_an_authenticator_without_a_counter_keeps_working(site: Settings) -> None:
    user_id = new_user(site.database_url)
    device = SoftAuthenticator(counts=False)
    enrol(site, user_id, device)
    assert [sign_in(site, device) for _ in range(3)] == [user_id] * 3


def test_two_uses_of_one_response_cannot_both_pass(site: Settings) -> None:
    user_id = new_user(site.database_url)
    device = SoftAuthenticator()
    enrol(site, user_id, device)
    start = authentication_options(site)
    response = device.get(start.options, ORIGIN)
    authenticate(start.challenge, response, site, url=site.database_url)
    # The same signed response again (its challenge given back a second time, as a tab that
    # did not drop it would): the counter it carries is no longer above the stored one.
    assert (
        refusal(lambda: authenticate(start.challenge, response, site, url=site.database_url))
        == "counter"
    )


@pytest.mark.parametrize("ceremony", ["register", "sign_in"])
def test_a_response_from_another_origin_is_refused(site: Settings, ceremony: str) -> None:
    user_id = new_user(site.database_url)
    device = SoftAuthenticator()
    if ceremony == "register":
        start = registration_options(user_id, site, url=site.database_url)
        response = device.create(start.options, "https://onboard.example.evil")

        def call() -> object:
            return register(user_id, start.challenge, response, "x", site, url=site.database_url)

    else:
        enrol(site, user_id, device)

        def call() -> object:
            return sign_in(site, device, origin="http://localhost:3001")

    assert refusal(call) == "origin"
    assert len(list_passkeys(user_id, site.database_url)) == (0 if ceremony == "register" else 1)


def _other_site(device: SoftAuthenticator, response: dict[str, Any]) -> dict[str, Any]:
    device.passkeys[0].rp_id = "localhost.evil"
    return device.get(
        json.dumps({"rpId": "localhost.evil", "challenge": _challenge(response)}), ORIGIN
    )


def _edited_signature(device: SoftAuthenticator, response: dict[str, Any]) -> dict[str, Any]:
    signature = bytearray(unb64url(response["response"]["signature"]))
    signature[-1] ^= 1
    response["response"]["signature"] = b64url(bytes(signature))
    return response


def _other_user_handle(device: SoftAuthenticator, response: dict[str, Any]) -> dict[str, Any]:
    response["response"]["userHandle"] = b64url(b"someone else")
    return response


def _challenge(response: dict[str, Any]) -> str:
    return str(json.loads(unb64url(response["response"]["clientDataJSON"]))["challenge"])


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [(_other_site, "rp_id"), (_edited_signature, "signature"), (_other_user_handle, "user_handle")],
)
def test_a_tampered_sign_in_is_refused(
    site: Settings,
    tamper: Callable[[SoftAuthenticator, dict[str, Any]], dict[str, Any]],
    reason: str,
) -> None:
    user_id = new_user(site.database_url)
    device = SoftAuthenticator()
    enrol(site, user_id, device)
    start = authentication_options(site)
    response = tamper(device, device.get(start.options, ORIGIN))
    url = site.database_url
    assert refusal(lambda: authenticate(start.challenge, response, site, url=url)) == reason


def test_an_unknown_or_removed_passkey_is_refused(site: Settings) -> None:
    user_id = new_user(site.database_url)
    device = SoftAuthenticator()
    passkey_id = enrol(site, user_id, device)
    assert remove_passkey(user_id, passkey_id, site.database_url)
    assert refusal(lambda: sign_in(site, device)) == "unknown_passkey"


# --- challenges -------------------------------------------------------------------------------


def test_a_response_to_another_challenge_is_refused(site: Settings) -> None:
    user_id = new_user(site.database_url)
    device = SoftAuthenticator()
    enrol(site, user_id, device)
    mine, theirs = authentication_options(site), authentication_options(site)
    response = device.get(theirs.options, ORIGIN)
    assert (
        refusal(lambda: authenticate(mine.challenge, response, site, url=site.database_url))
        == "challenge"
    )


def test_challenges_expire_are_for_one_purpose_and_one_user(site: Settings) -> None:
    user_id = new_user(site.database_url)
    other_id = new_user(site.database_url, "sam@example.com")
    device = SoftAuthenticator()
    start = registration_options(user_id, site, url=site.database_url)
    response = device.create(start.options, ORIGIN)
    later = time.time() + CHALLENGE_TTL + 1
    url = site.database_url
    assert (
        refusal(lambda: register(user_id, start.challenge, response, "x", site, now=later, url=url))
        == "challenge"
    )
    assert (
        refusal(lambda: register(other_id, start.challenge, response, "x", site, url=url))
        == "challenge"
    )
    assert refusal(lambda: register(user_id, None, response, "x", site, url=url)) == "challenge"
    # A registration challenge does not answer a sign-in (nor a sign-in one a registration).
    assert refusal(lambda: authenticate(start.challenge, response, site, url=url)) == "challenge"
    as_sign_in = replace(start.challenge, purpose=Purpose.SIGN_IN, user_id=None)
    assert (
        refusal(lambda: register(user_id, as_sign_in, response, "x", site, url=url)) == "challenge"
    )
    assert list_passkeys(user_id, url) == []
    register(user_id, start.challenge, response, "x", site, url=url)
    assert len(list_passkeys(user_id, url)) == 1


def test_a_challenge_survives_the_tab_state_only_in_its_own_shape() -> None:
    challenge = Challenge("abc", Purpose.REGISTER, 12.5, 7, "handle")
    assert Challenge.from_dict(challenge.to_dict()) == challenge
    for bad in (
        None,
        "abc",
        [],
        {"value": "abc"},
        {**challenge.to_dict(), "purpose": "admin"},
        {**challenge.to_dict(), "user_id": True},
        {**challenge.to_dict(), "expires_at": "soon"},
        {**challenge.to_dict(), "user_handle": 5},
    ):
        assert Challenge.from_dict(bad) is None, bad


@pytest.mark.parametrize(
    "response",
    [
        None,
        "text",
        [],
        {},
        {"id": 5},
        {"id": "x", "rawId": "x", "response": "x"},
        {
            "id": "!!",
            "rawId": "!!",
            "type": "public-key",
            "response": {"clientDataJSON": "%%", "attestationObject": "??"},
        },
        {"id": "a" * 40_000},
    ],
)
def test_garbage_is_refused_with_a_message(site: Settings, response: object) -> None:
    user_id = new_user(site.database_url)
    start = registration_options(user_id, site, url=site.database_url)
    with pytest.raises(PasskeyRefused) as caught:
        register(user_id, start.challenge, response, "x", site, url=site.database_url)
    assert str(caught.value)
    sign = authentication_options(site)
    with pytest.raises(PasskeyRefused):
        authenticate(sign.challenge, response, site, url=site.database_url)


# --- names, ownership, limits -----------------------------------------------------------------


def test_names_are_cleaned_and_bounded() -> None:
    assert clean_name("  My   phone ") == "My phone"
    for bad, message in (
        ("", passkeys.ENTER_NAME),
        ("   ", passkeys.ENTER_NAME),
        ("x" * 65, passkeys.NAME_TOO_LONG),
        ("a\x00b", None),
        (5, None),
    ):
        refused = clean_name(bad)
        assert isinstance(refused, TextRefused), bad
        if message:
            assert refused.message == message


def test_only_the_owner_renames_or_removes_a_passkey(site: Settings) -> None:
    url = site.database_url
    owner, other = new_user(url), new_user(url, "sam@example.com")
    passkey_id = enrol(site, owner, SoftAuthenticator())
    assert not rename_passkey(other, passkey_id, "Mine now", url)
    assert not remove_passkey(other, passkey_id, url)
    for bad in ("1", None, True, -1, 0, 10**30):
        assert not rename_passkey(owner, bad, "x", url)
        assert not remove_passkey(owner, bad, url)
    assert [p.name for p in list_passkeys(owner, url)] == ["Laptop"]
    assert rename_passkey(owner, passkey_id, "Work laptop", url)
    assert [p.name for p in list_passkeys(owner, url)] == ["Work laptop"]
    assert list_passkeys(other, url) == []
    assert remove_passkey(owner, passkey_id, url)
    assert list_passkeys(owner, url) == []


def test_the_same_credential_cannot_be_registered_twice(site: Settings) -> None:
    url = site.database_url
    user_id = new_user(url)
    start = registration_options(user_id, site, url=url)
    response = SoftAuthenticator().create(start.options, ORIGIN)
    register(user_id, start.challenge, response, "A", site, url=url)
    again = registration_options(user_id, site, url=url)
    clientdata = json.loads(unb64url(response["response"]["clientDataJSON"]))
    clientdata["challenge"] = again.challenge.value
    # The same credential sent again for a new challenge (a "none" attestation signs
    # nothing, so only the client data changes).
    response["response"]["clientDataJSON"] = b64url(json.dumps(clientdata).encode())
    assert (
        refusal(lambda: register(user_id, again.challenge, response, "B", site, url=url))
        == "duplicate"
    )
    assert len(list_passkeys(user_id, url)) == 1


def test_an_account_holds_at_most_the_limit(site: Settings) -> None:
    url = site.database_url
    user_id = new_user(url)
    device = SoftAuthenticator()
    for n in range(MAX_PASSKEYS):
        start = registration_options(user_id, site, url=url)
        device.passkeys.clear()  # a fresh authenticator each time (nothing to exclude)
        register(
            user_id, start.challenge, device.create(start.options, ORIGIN), f"k{n}", site, url=url
        )
    assert refusal(lambda: registration_options(user_id, site, url=url)) == "too_many"


def test_deleting_the_account_deletes_its_passkeys(site: Settings) -> None:
    url = site.database_url
    user_id = new_user(url)
    device = SoftAuthenticator()
    enrol(site, user_id, device)
    users.delete_user(user_id, url)
    with get_engine(url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM passkeys")).scalar_one() == 0
    assert refusal(lambda: sign_in(site, device)) == "unknown_passkey"


def test_registration_for_a_deleted_user_is_refused(site: Settings) -> None:
    with pytest.raises(users.UserGone):
        registration_options(424242, site, url=site.database_url)


# --- the migration ----------------------------------------------------------------------------


def test_the_migration_matches_the_model(db_url: str) -> None:
    with get_engine(db_url).connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert [diff for diff in diffs if "passkeys" in repr(diff)] == []


def test_the_migration_goes_down_and_up(db_url: str) -> None:
    revision = db._alembic()[1].get_revision(MIGRATION)
    assert revision is not None and isinstance(revision.down_revision, str)
    migrate(db_url, revision.down_revision)
    assert "passkeys" not in sa.inspect(get_engine(db_url)).get_table_names()
    migrate(db_url, "head")
    assert "passkeys" in sa.inspect(get_engine(db_url)).get_table_names()
