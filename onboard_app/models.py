"""Database tables (SQLModel). No Reflex import: ``onboard_app.py`` registers them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (stored as naive UTC by SQLite)."""
    return datetime.now(UTC)


class User(SQLModel, table=True):
    """An account: local (email + password) or linked to GitHub / an OIDC provider."""

    __tablename__ = "users"
    # AUTOINCREMENT: SQLite must never hand a deleted user's id to a new account, or the
    # deleted user's still-unexpired token (same sub, same version 1) would log into it.
    __table_args__ = (
        sa.UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_identity"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str | None = Field(default=None, max_length=254, unique=True, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    #: When the owner proved the address is theirs (a mailed link or code, or a reset);
    #: ``None``: a password account must confirm it before using the app.
    email_verified_at: datetime | None = Field(default=None)
    github_id: int | None = Field(
        default=None, sa_column=Column(sa.BigInteger, unique=True, index=True, nullable=True)
    )
    oidc_issuer: str | None = Field(default=None, max_length=255)
    oidc_subject: str | None = Field(default=None, max_length=255)
    display_name: str = Field(default="", max_length=80)
    avatar_url: str | None = Field(default=None, max_length=500)
    onboarding_step: str = Field(default="profile", max_length=20)
    onboarding_completed_at: datetime | None = Field(default=None)
    #: The flow version the user last completed (0: never completed).
    flow_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    token_version: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class OnboardingAnswers(SQLModel, table=True):
    """The answers a user gave in the onboarding wizard (editable later in settings)."""

    __tablename__ = "onboarding_answers"

    user_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        )
    )
    role: str | None = Field(default=None, max_length=40)
    bio: str = Field(default="", max_length=500)
    interests: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    experience_level: str | None = Field(default=None, max_length=20)
    email_digest: bool | None = Field(default=None)
    theme: str | None = Field(default=None, max_length=10)
    #: Answers of fields without a column of their own (steps added through the spec).
    data: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    #: Optional steps the user skipped.
    skipped: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    updated_at: datetime = Field(default_factory=utcnow)


class CatalogueItem(SQLModel, table=True):
    """One entry of the explore catalogue."""

    __tablename__ = "catalogue_items"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=120, unique=True, index=True)
    title: str = Field(max_length=120)
    description: str = Field(max_length=400)
    url: str = Field(max_length=500)
    kind: str = Field(default="project", max_length=20)
    topics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class CatalogueItemTopic(SQLModel, table=True):
    """Item-topic pairs, indexed by topic so ranking by interest overlap stays fast."""

    __tablename__ = "catalogue_item_topics"
    __table_args__ = (sa.Index("ix_catalogue_item_topics_topic_item", "topic", "item_id"),)

    item_id: int = Field(
        sa_column=Column(
            sa.Integer,
            sa.ForeignKey("catalogue_items.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    topic: str = Field(max_length=40, primary_key=True)


# --- One-time email links (services/email_links.py) ----------------------------------------


class EmailLink(SQLModel, table=True):
    """A one-time link and short code mailed to a user (verification, reset, email change).

    Only hashes are stored. One row per user and purpose: a new link replaces the previous
    one, and deleting the user deletes their links.
    """

    __tablename__ = "email_links"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "purpose", name="uq_email_links_user_purpose"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    purpose: str = Field(max_length=20)
    #: SHA-256 (hex) of the link's token.
    token_hash: str = Field(max_length=64, unique=True, index=True)
    #: HMAC-SHA256 (hex) of the code, keyed by the signing key named in code_key_id.
    code_hash: str = Field(max_length=64)
    code_key_id: str = Field(max_length=64)
    new_email: str | None = Field(default=None, max_length=254)
    code_attempts: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = Field(default=None)


ALL_TABLES: tuple[type[SQLModel], ...] = (
    User,
    OnboardingAnswers,
    CatalogueItem,
    CatalogueItemTopic,
    EmailLink,
)
