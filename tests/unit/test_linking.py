"""Account linking: a provider identity finds or creates its account, never by email."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from onboard_app.models import User
from onboard_app.services import linking
from onboard_app.services.db import get_engine
from onboard_app.services.linking import ExternalIdentity, sign_in_external
from onboard_app.services.oauth_errors import OAuthError
from onboard_app.services.users import create_local_user
from onboard_app.settings import Settings

HASH = "$argon2id$v=19$m=24576,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaA"  # never verified


def user_rows(settings: Settings) -> list[tuple[Any, ...]]:
    with get_engine(settings.database_url).connect() as connection:
        query = sa.select(User.id, User.email, User.github_id, User.oidc_subject)  # type: ignore[call-overload]
        return [tuple(row) for row in connection.execute(query)]


def test_first_sign_in_creates_the_account_with_the_provider_profile(app_db: Settings) -> None:
    user = sign_in_external(
        ExternalIdentity(
            "github",
            github_id=42,
            email="ada@example.com",
            display_name="Ada",
            avatar_url="https://avatars.example.com/u/42",
        )
    )
    assert (user.github_id, user.email, user.display_name, user.avatar_url) == (
        42,
        "ada@example.com",
        "Ada",
        "https://avatars.example.com/u/42",
    )
    assert user.password_hash is None and user.onboarding_step == "profile"


def test_the_key_finds_the_account_whatever_the_address_says_now(app_db: Settings) -> None:
    first = sign_in_external(ExternalIdentity("github", github_id=7, email="old@example.com"))
    again = sign_in_external(ExternalIdentity("github", github_id=7, email="new@example.com"))
    assert again.id == first.id and again.email == "old@example.com"
    assert len(user_rows(app_db)) == 1


@pytest.mark.parametrize(
    "identity",
    [
        ExternalIdentity("github", github_id=99, email="taken@example.com"),
        ExternalIdentity(
            "oidc",
            oidc_issuer="https://id.example.com",
            oidc_subject="s-1",
            email="taken@example.com",
        ),
    ],
    ids=["github", "oidc"],
)
def test_address_of_another_account_is_never_linked(
    app_db: Settings, identity: ExternalIdentity
) -> None:
    local = create_local_user("taken@example.com", HASH)
    with pytest.raises(OAuthError) as caught:
        sign_in_external(identity)
    assert caught.value.code == "email_taken"
    assert user_rows(app_db) == [(local.id, "taken@example.com", None, None)]


def test_oidc_identity_is_scoped_to_its_issuer(app_db: Settings) -> None:
    first = sign_in_external(
        ExternalIdentity("oidc", oidc_issuer="https://a.example.com", oidc_subject="same")
    )
    second = sign_in_external(
        ExternalIdentity("oidc", oidc_issuer="https://b.example.com", oidc_subject="same")
    )
    assert first.id != second.id
    again = sign_in_external(
        ExternalIdentity("oidc", oidc_issuer="https://a.example.com", oidc_subject="same")
    )
    assert again.id == first.id
    assert len(user_rows(app_db)) == 2


def test_identity_without_a_key_is_refused(app_db: Settings) -> None:
    with pytest.raises(OAuthError) as caught:
        sign_in_external(ExternalIdentity("oidc", oidc_issuer="https://a.example.com"))
    assert caught.value.code == "no_account_info"
    assert user_rows(app_db) == []


def test_module_has_no_reflex_import() -> None:
    source = Path(linking.__file__).read_text()
    assert "import reflex" not in source and "from reflex" not in source
