"""One frozen settings object, read once from ``ONBOARD_*`` environment variables.

Every knob the app has is here and documented in the README. Nothing in this module
imports Reflex, so the services and the tests can build a ``Settings`` for any scenario
with :func:`load_settings` and a plain mapping.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "ONBOARD_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_KEY_BYTES = 32
KEY_HELP = (
    'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))" '
    "and set it as ONBOARD_SIGNING_KEY"
)


class SettingsError(RuntimeError):
    """The environment does not describe a configuration the app can run with."""


@dataclass(frozen=True)
class SigningKey:
    """One HMAC key of the keyring.

    Attributes:
        kid: The key id written into the token header.
        secret: The raw key bytes (at least 32).
        not_after: For retired keys, the Unix time after which tokens signed with this
            key are no longer accepted; ``None`` for the current key.
    """

    kid: str
    secret: bytes = field(repr=False)
    not_after: int | None = None


@dataclass(frozen=True)
class OAuthClientSettings:
    """Client registration for one OAuth 2.0 / OpenID Connect provider.

    Attributes:
        name: Provider name used in routes (``github`` or ``oidc``).
        label: Button text on the login page.
        client_id: The registered client id.
        client_secret: The registered client secret.
        authorize_url: Authorization endpoint (GitHub) or ``None`` for discovery (OIDC).
        token_url: Token endpoint (GitHub) or ``None`` for discovery (OIDC).
        api_url: GitHub's REST API base, for ``/user`` and ``/user/emails``.
        issuer: The OIDC issuer whose discovery document is used.
        scope: Requested scopes.
        timeout: Seconds to wait for the provider on each back-channel request.
    """

    name: str
    label: str
    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str | None = None
    token_url: str | None = None
    api_url: str | None = None
    issuer: str | None = None
    scope: str = ""
    timeout: float = 10.0


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment.

    Attributes:
        environment: ``development`` or ``production``.
        database_url: SQLAlchemy URL of the database.
        redis_url: Redis URL; selects Reflex's Redis state manager and shared throttling.
        public_url: The address users open; OAuth callback URLs are built from it.
        signing_keys: The keyring, current key first.
        token_issuer: ``iss`` claim of session tokens.
        token_audience: ``aud`` claim of session tokens.
        token_ttl: Seconds a session token is valid (idle timeout).
        token_refresh_after: Age in seconds after which activity re-mints the token.
        session_max_age: Absolute session lifetime in seconds since login.
        leeway: Clock skew in seconds tolerated when checking time claims.
        login_max_failures_per_account: Failed logins per account per window.
        login_max_failures_per_client: Failed logins per client address per window.
        login_failure_window: Length of the throttling window in seconds.
        password_hash_slots: Password hashes (signup, login) a worker computes at once;
            more wait their turn, so a burst of them leaves CPU for everyone else.
        session_cache_ttl: Seconds a worker may answer the guard's revocation check from
            memory (changes evict at once, on every worker); 0 reads the database each time.
        github: GitHub client settings, or ``None`` when no GitHub app is configured.
        oidc: OpenID Connect client settings, or ``None``.
    """

    environment: str = "development"
    # Inside a hidden folder: Reflex's dev hot reload ignores it, so SQLite's WAL files
    # changing on every write do not restart the backend.
    database_url: str = f"sqlite:///{PROJECT_ROOT / '.onboard' / 'onboard.db'}"
    redis_url: str | None = None
    public_url: str = "http://localhost:3000"
    signing_keys: tuple[SigningKey, ...] = ()
    token_issuer: str = "onboard"  # noqa: S105 (a claim value, not a secret)
    token_audience: str = "onboard-app"  # noqa: S105 (a claim value, not a secret)
    token_ttl: int = 3600
    token_refresh_after: int = 600
    session_max_age: int = 7 * 24 * 3600
    leeway: int = 10
    login_max_failures_per_account: int = 5
    login_max_failures_per_client: int = 20
    login_failure_window: int = 900
    session_cache_ttl: int = 30
    password_hash_slots: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
    github: OAuthClientSettings | None = None
    oidc: OAuthClientSettings | None = None

    @property
    def is_production(self) -> bool:
        """Whether the app runs in production mode."""
        return self.environment == "production"

    @property
    def current_key(self) -> SigningKey:
        """The key new tokens are signed with."""
        if not self.signing_keys:
            raise SettingsError(f"no signing key configured; {KEY_HELP}")
        return self.signing_keys[0]

    def oauth_callback_url(self, provider: str) -> str:
        """The constant, registered callback URL of a provider.

        Args:
            provider: ``github`` or ``oidc``.

        Returns:
            The absolute callback URL.
        """
        return f"{self.public_url.rstrip('/')}/auth/callback/{provider}"


def decode_key(text: str) -> bytes:
    """Decode a configured key (URL-safe base64, padding optional, or hex).

    Args:
        text: The key as configured.

    Returns:
        The raw key bytes.

    Raises:
        SettingsError: If the text is not base64/hex or is shorter than 32 bytes.
    """
    text = text.strip()
    raw: bytes | None = None
    if len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text):
        raw = bytes.fromhex(text)
    else:
        try:
            # validate=True: a passphrase is not silently "decoded" by dropping characters.
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None:
        raise SettingsError(f"a signing key is not base64 or hex; {KEY_HELP}")
    if len(raw) < MIN_KEY_BYTES:
        raise SettingsError(
            f"a signing key has {len(raw)} bytes, at least {MIN_KEY_BYTES} are required; {KEY_HELP}"
        )
    return raw


def _kid_for(secret: bytes) -> str:
    return "k-" + hashlib.sha256(secret).hexdigest()[:12]


def _parse_current_key(text: str) -> SigningKey:
    kid, sep, value = text.partition(":")
    if not sep:
        secret = decode_key(text)
        return SigningKey(_kid_for(secret), secret)
    return SigningKey(_checked_kid(kid), decode_key(value))


def _checked_kid(kid: str) -> str:
    kid = kid.strip()
    if (
        not kid
        or len(kid) > 64
        or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in kid)
    ):
        raise SettingsError(f"key id {kid!r} must be 1-64 characters of [A-Za-z0-9._-]")
    return kid


def _parse_old_keys(text: str) -> list[SigningKey]:
    keys = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        parts = item.split(":")
        if len(parts) != 3:
            raise SettingsError(
                "ONBOARD_OLD_SIGNING_KEYS entries are kid:key:not_after_unix_time, comma-separated"
            )
        kid, value, not_after = parts
        try:
            until = int(not_after)
        except ValueError as exc:
            raise SettingsError(f"old key {kid!r}: not_after must be a Unix time") from exc
        keys.append(SigningKey(_checked_kid(kid), decode_key(value), until))
    return keys


def _dev_key(path: Path) -> SigningKey:
    """Read, or create once, the development signing key kept in an ignored file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return _parse_current_key(path.read_text().strip())


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 1, maximum: int | None = None
) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name} must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{PREFIX}{name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{PREFIX}{name} must be at most {maximum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(PREFIX + name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name} must be a number of seconds, got {raw!r}") from exc
    if not 0 < value <= 300:
        raise SettingsError(f"{PREFIX}{name} must be between 0 and 300 seconds")
    return value


def _oauth(env: Mapping[str, str]) -> tuple[OAuthClientSettings | None, OAuthClientSettings | None]:
    github = None
    if env.get(PREFIX + "GITHUB_CLIENT_ID") and env.get(PREFIX + "GITHUB_CLIENT_SECRET"):
        github = OAuthClientSettings(
            name="github",
            label="Sign in with GitHub",
            client_id=env[PREFIX + "GITHUB_CLIENT_ID"],
            client_secret=env[PREFIX + "GITHUB_CLIENT_SECRET"],
            authorize_url=env.get(
                PREFIX + "GITHUB_AUTHORIZE_URL", "https://github.com/login/oauth/authorize"
            ),
            token_url=env.get(
                PREFIX + "GITHUB_TOKEN_URL", "https://github.com/login/oauth/access_token"
            ),
            api_url=env.get(PREFIX + "GITHUB_API_URL", "https://api.github.com").rstrip("/"),
            scope="read:user user:email",
            timeout=_float(env, "OAUTH_TIMEOUT", 10.0),
        )
    oidc = None
    if env.get(PREFIX + "OIDC_ISSUER") and env.get(PREFIX + "OIDC_CLIENT_ID"):
        oidc = OAuthClientSettings(
            name="oidc",
            label=env.get(PREFIX + "OIDC_LABEL", "Sign in with OpenID Connect"),
            client_id=env[PREFIX + "OIDC_CLIENT_ID"],
            client_secret=env.get(PREFIX + "OIDC_CLIENT_SECRET", ""),
            issuer=env[PREFIX + "OIDC_ISSUER"].rstrip("/"),
            scope=env.get(PREFIX + "OIDC_SCOPE", "openid email profile"),
            timeout=_float(env, "OAUTH_TIMEOUT", 10.0),
        )
    return github, oidc


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from environment variables.

    Args:
        env: The environment to read; ``os.environ`` when omitted.

    Returns:
        The frozen settings.

    Raises:
        SettingsError: If a value is malformed, or production mode lacks a proper key.
    """
    env = os.environ if env is None else env
    environment = env.get(PREFIX + "ENV", "").strip().lower()
    if not environment:
        environment = "production" if env.get("REFLEX_ENV_MODE") == "prod" else "development"
    if environment not in ("development", "production"):
        raise SettingsError(f"{PREFIX}ENV must be development or production, got {environment!r}")

    keys: list[SigningKey] = []
    if env.get(PREFIX + "SIGNING_KEY"):
        keys.append(_parse_current_key(env[PREFIX + "SIGNING_KEY"]))
    elif environment == "production":
        raise SettingsError(f"production mode needs a signing key: {KEY_HELP}")
    else:
        key_file = Path(env.get(PREFIX + "DEV_KEY_FILE", PROJECT_ROOT / ".onboard" / "dev-key"))
        keys.append(_dev_key(key_file))
    keys.extend(_parse_old_keys(env.get(PREFIX + "OLD_SIGNING_KEYS", "")))
    if len({key.kid for key in keys}) != len(keys):
        raise SettingsError("signing key ids must be unique")

    github, oidc = _oauth(env)
    defaults = Settings()
    return Settings(
        environment=environment,
        database_url=env.get(PREFIX + "DATABASE_URL") or defaults.database_url,
        redis_url=env.get(PREFIX + "REDIS_URL") or None,
        public_url=(env.get(PREFIX + "PUBLIC_URL") or defaults.public_url).rstrip("/"),
        signing_keys=tuple(keys),
        token_ttl=_int(env, "TOKEN_TTL", defaults.token_ttl, minimum=60),
        token_refresh_after=_int(env, "TOKEN_REFRESH_AFTER", defaults.token_refresh_after),
        session_max_age=_int(env, "SESSION_MAX_AGE", defaults.session_max_age, minimum=60),
        login_max_failures_per_account=_int(
            env, "LOGIN_MAX_FAILURES_PER_ACCOUNT", defaults.login_max_failures_per_account
        ),
        login_max_failures_per_client=_int(
            env, "LOGIN_MAX_FAILURES_PER_CLIENT", defaults.login_max_failures_per_client
        ),
        login_failure_window=_int(env, "LOGIN_FAILURE_WINDOW", defaults.login_failure_window),
        password_hash_slots=_int(
            env, "PASSWORD_HASH_SLOTS", defaults.password_hash_slots, maximum=64
        ),
        session_cache_ttl=_int(
            env, "SESSION_CACHE_TTL", defaults.session_cache_ttl, minimum=0, maximum=300
        ),
        github=github,
        oidc=oidc,
    )


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def override_settings(settings: Settings | None) -> None:
    """Replace the process-wide settings (tests and tools only).

    Args:
        settings: The settings to use, or ``None`` to reload from the environment.
    """
    global _settings
    _settings = settings
