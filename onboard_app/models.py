"""Database tables (SQLModel). No Reflex import: ``onboard_app.py`` registers them."""

from __future__ import annotations

from datetime import UTC, date, datetime
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
    #: ``admin`` when granted with ``python -m onboard_app.cli grant-admin`` (else ``member``);
    #: ``services/roles.py`` adds the verified addresses of ``ONBOARD_ADMIN_EMAILS``.
    role: str = Field(
        default="member", max_length=20, sa_column_kwargs={"server_default": "member"}
    )
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# --- Passkeys (services/passkeys.py) --------------------------------------------------------


class Passkey(SQLModel, table=True):
    """A passkey (a WebAuthn credential) a user registered, and what signing in with it checks.

    Nothing secret is kept: the credential's id and public key (COSE), the user handle the
    authenticator stores with it, and its signature counter as last seen (0 for
    authenticators that keep none; otherwise every sign-in must raise it). Deleted with
    the user.
    """

    __tablename__ = "passkeys"
    __table_args__ = (sa.Index("ix_passkeys_user_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    #: base64url of the credential id (at most 1023 bytes).
    credential_id: str = Field(max_length=1400, unique=True)
    #: The COSE-encoded public key.
    public_key: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    #: base64url of the WebAuthn ``user.id``: random, the same for all passkeys of a user.
    user_handle: str = Field(max_length=100)
    sign_count: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False))
    name: str = Field(max_length=64)
    #: How the browser can reach the authenticator (``internal``, ``hybrid``, ``usb``...).
    transports: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = Field(default=None)


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


# --- Sessions per device (services/sessions.py) --------------------------------------------


class DeviceSession(SQLModel, table=True):
    """One sign-in of a user on one browser: what the token's ``sid`` claim names.

    A token is accepted only while its session row exists, belongs to the token's user and
    carries the user's current ``token_version`` (ending sessions bumps the version and
    carries it to the sessions that stay, so nothing else minted before survives). Device,
    browser and system are parsed from the user agent at sign-in; nothing of the raw
    header is kept. ``expires_at`` is when no token of the session can still be valid;
    expired rows are pruned (at each sign-in of the user, and by ``prune-sessions``).
    """

    __tablename__ = "device_sessions"
    __table_args__ = (
        sa.Index("ix_device_sessions_user_id", "user_id"),
        sa.Index("ix_device_sessions_expires_at", "expires_at"),
    )

    #: Random (``secrets.token_hex(16)``); the ``sid`` claim of the session's tokens.
    id: str = Field(max_length=64, primary_key=True)
    user_id: int = Field(
        sa_column=Column(sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    #: The user's token version this session is valid at.
    token_version: int
    created_at: datetime = Field(default_factory=utcnow)
    #: Written at most once per ``sessions.LAST_SEEN_INTERVAL`` of activity.
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    client_address: str = Field(default="", max_length=64)
    browser: str = Field(default="", max_length=40)
    system: str = Field(default="", max_length=40)
    device: str = Field(default="", max_length=60)
    #: ``desktop``, ``phone``, ``tablet`` or ``unknown``.
    form_factor: str = Field(default="unknown", max_length=10)


# --- Onboarding insights (services/events.py, services/insights.py) -------------------------


class OnboardingEvent(SQLModel, table=True):
    """One thing a user did in the wizard, recorded by the server in the same transaction.

    ``kind`` is ``opened``, ``saved``, ``skipped`` or ``finished``; ``method`` how the
    account signs in (``password``, ``github``, ``oidc``), read from the user row. Pruned
    after ``ONBOARD_EVENTS_RETENTION_DAYS``; deleted with the user.
    """

    __tablename__ = "onboarding_events"
    __table_args__ = (
        sa.Index("ix_onboarding_events_user_id", "user_id"),
        sa.Index("ix_onboarding_events_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(max_length=10)
    step: str = Field(max_length=20)
    flow_version: int
    method: str = Field(max_length=10)
    at: datetime = Field(default_factory=utcnow)


class OnboardingProgress(SQLModel, table=True):
    """Where each user is in onboarding and since when: what the stuck list reads.

    Kept by every recorded event. ``journey`` remembers, per flow version and step, when
    the user first opened and first finished it, so each person counts once in
    :class:`OnboardingCount`.
    """

    __tablename__ = "onboarding_progress"
    __table_args__ = (
        # The stuck list: unfinished users by how long they have been at their step, and
        # by sign-up time (a sign-up range, the sort by sign-up), each covering the filters.
        sa.Index(
            "ix_onboarding_progress_stuck",
            "since",
            "signed_up_at",
            "method",
            "flow_version",
            "step",
            sqlite_where=sa.text("step <> 'completed'"),
            postgresql_where=sa.text("step <> 'completed'"),
        ),
        sa.Index(
            "ix_onboarding_progress_signed_up",
            "signed_up_at",
            "since",
            "method",
            "flow_version",
            "step",
            sqlite_where=sa.text("step <> 'completed'"),
            postgresql_where=sa.text("step <> 'completed'"),
        ),
    )

    user_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        )
    )
    step: str = Field(max_length=20)
    since: datetime
    flow_version: int
    method: str = Field(max_length=10)
    signed_up_at: datetime
    journey: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )


class OnboardingCount(SQLModel, table=True):
    """Anonymous totals of the funnel, step times and completions, by sign-up day and month.

    One row per measure (``reached``, ``finished``, ``time``, ``completed``), period
    (``day``: ``cohort_day`` is the sign-up day; ``month``: the first day of the sign-up
    month, the sum of its days), sign-in method, flow version, step and bucket (``time``:
    the duration's bucket; ``completed``: the day of completion as an ordinal; else 0).
    A date range reads whole months from month rows and only its ends from day rows. No
    user id: the totals outlive the pruned events and deleted accounts.
    """

    __tablename__ = "onboarding_counts"

    measure: str = Field(max_length=10, primary_key=True)
    period: str = Field(max_length=5, primary_key=True)
    cohort_day: date = Field(primary_key=True)
    method: str = Field(max_length=10, primary_key=True)
    flow_version: int = Field(primary_key=True)
    step: str = Field(max_length=20, primary_key=True)
    bucket: int = Field(primary_key=True)
    users: int = Field(default=0)


# --- Two-factor authentication (services/two_factor.py) ------------------------------------


class TwoFactor(SQLModel, table=True):
    """A user's authenticator app (TOTP): its secret, encrypted, and the last step used.

    ``confirmed_at`` is ``None`` while an enrolment waits for its first code: the account
    is enrolled (asked for a code at sign-in) only once it is set. The secret is AES-GCM
    under a key derived from the signing key named by ``secret_key_id``, bound to the user.
    """

    __tablename__ = "two_factor"

    user_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        )
    )
    #: base64url(nonce || ciphertext) of the base32 secret.
    secret_ciphertext: str = Field(max_length=200)
    secret_key_id: str = Field(max_length=64)
    #: The time step (Unix time // 30) of the last code accepted: never accepted again.
    last_step: int | None = Field(default=None, sa_column=Column(sa.BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    confirmed_at: datetime | None = Field(default=None)


class TwoFactorRecoveryCode(SQLModel, table=True):
    """One of the ten one-time recovery codes of an enrolled user (only its hash)."""

    __tablename__ = "two_factor_recovery_codes"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "code_hash", name="uq_two_factor_recovery_codes"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    #: SHA-256 (hex) of the code with the user id (80 random bits: no key needed).
    code_hash: str = Field(max_length=64)
    used_at: datetime | None = Field(default=None)


ALL_TABLES: tuple[type[SQLModel], ...] = (
    User,
    Passkey,
    OnboardingAnswers,
    CatalogueItem,
    CatalogueItemTopic,
    EmailLink,
    DeviceSession,
    OnboardingEvent,
    OnboardingProgress,
    OnboardingCount,
    TwoFactor,
    TwoFactorRecoveryCode,
)
