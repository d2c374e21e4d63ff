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
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

PREFIX = "ONBOARD_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_KEY_BYTES = 32
KEY_HELP = (
    'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))" '
    "and set it as ONBOARD_SIGNING_KEY"
)
#: How the app can authenticate itself at an OIDC token endpoint, in its order of preference.
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
SMTP_HELP = (
    "set ONBOARD_SMTP_URL to smtp+starttls://user:password@host:587, "
    "smtps://user:password@host:465 or smtp://host:25 (user and password URL-encoded)"
)
SmtpSecurity = Literal["plain", "starttls", "tls"]
_SMTP_SCHEMES: dict[str, tuple[SmtpSecurity, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


_BOUNDS = "bounds"


def _knob(default: int | Callable[[], int], *, minimum: int = 1, maximum: int | None = None) -> Any:
    """A whole-number setting read from ``ONBOARD_<NAME>``, refused outside its bounds."""
    metadata = {_BOUNDS: (minimum, maximum)}
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


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
        token_auth_method: How the client authenticates at the OIDC token endpoint (one of
            :data:`TOKEN_AUTH_METHODS`); ``None`` picks it from the discovery document.
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
    token_auth_method: str | None = None


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP server outgoing mail is handed to (``ONBOARD_SMTP_URL``).

    Attributes:
        host: Server name or address.
        port: Server port.
        security: ``plain`` (no TLS), ``starttls`` (upgrade required, never skipped) or
            ``tls`` (SMTPS, TLS from the first byte).
        username: Login name, or ``None`` to send without logging in.
        password: Login password (kept out of the repr).
        timeout: Seconds to wait for the server on each network operation.
        ca_file: A PEM file of trusted certificates instead of the system's, or ``None``.
    """

    host: str
    port: int
    security: SmtpSecurity = "plain"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    ca_file: str | None = None


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
        signup_max_per_client: Sign-ups (each one costs a password hash) per client address
            per sign-up window.
        signup_window: Length of the sign-up throttling window in seconds.
        trusted_proxy_hops: Reverse proxies in front of the app whose ``X-Forwarded-For``
            entries are believed (Reflex's ``trusted_proxy_hops``); 0 ignores the header.
        password_hash_slots: Password hashes (signup, login) a worker computes at once;
            more wait their turn, so a burst of them leaves CPU for everyone else.
        github: GitHub client settings, or ``None`` when no GitHub app is configured.
        oidc: OpenID Connect client settings, or ``None``.
        smtp: The SMTP server, or ``None``: development then writes mail to the
            development mailbox (production refuses to start without one).
        mail_from: The ``From`` of every mail (``Name <address>`` or an address).
        mail_dir: The development mailbox folder.
        admin_emails: Addresses (lower-cased) whose accounts have the admin role once the
            address is verified.
        events_retention_days: Days an onboarding event is kept before ``prune-events``
            deletes it.
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
    token_ttl: int = _knob(3600, minimum=60)
    token_refresh_after: int = _knob(600)
    session_max_age: int = _knob(7 * 24 * 3600, minimum=60)
    leeway: int = 10
    login_max_failures_per_account: int = _knob(5)
    login_max_failures_per_client: int = _knob(20)
    login_failure_window: int = _knob(900)
    signup_max_per_client: int = _knob(10)
    signup_window: int = _knob(900)
    # More than a handful of proxies in one chain is a typo, not a deployment.
    trusted_proxy_hops: int = _knob(0, minimum=0, maximum=10)
    password_hash_slots: int = _knob(
        lambda: max(1, (os.cpu_count() or 2) // 2), minimum=1, maximum=64
    )
    github: OAuthClientSettings | None = None
    oidc: OAuthClientSettings | None = None
    smtp: SmtpSettings | None = None
    mail_from: str = "Onboard <no-reply@localhost>"
    mail_dir: Path = PROJECT_ROOT / ".onboard" / "mail"
    admin_emails: frozenset[str] = frozenset()
    events_retention_days: int = _knob(365, maximum=36500)

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
    token_auth_method = (env.get(PREFIX + "OIDC_TOKEN_AUTH_METHOD") or "").strip() or None
    if token_auth_method is not None and token_auth_method not in TOKEN_AUTH_METHODS:
        raise SettingsError(
            f"{PREFIX}OIDC_TOKEN_AUTH_METHOD must be client_secret_basic or client_secret_post, "
            f"got {token_auth_method!r}"
        )
    oidc = None
    if env.get(PREFIX + "OIDC_ISSUER") and env.get(PREFIX + "OIDC_CLIENT_ID"):
        if token_auth_method is not None and not env.get(PREFIX + "OIDC_CLIENT_SECRET"):
            raise SettingsError(
                f"{PREFIX}OIDC_TOKEN_AUTH_METHOD={token_auth_method} needs "
                f"{PREFIX}OIDC_CLIENT_SECRET (a client without a secret sends none)"
            )
        oidc = OAuthClientSettings(
            name="oidc",
            label=env.get(PREFIX + "OIDC_LABEL", "Sign in with OpenID Connect"),
            client_id=env[PREFIX + "OIDC_CLIENT_ID"],
            client_secret=env.get(PREFIX + "OIDC_CLIENT_SECRET", ""),
            issuer=env[PREFIX + "OIDC_ISSUER"].rstrip("/"),
            scope=env.get(PREFIX + "OIDC_SCOPE", "openid email profile"),
            timeout=_float(env, "OAUTH_TIMEOUT", 10.0),
            token_auth_method=token_auth_method,
        )
    return github, oidc


def parse_smtp_url(text: str, *, timeout: float = 10.0, ca_file: str | None = None) -> SmtpSettings:
    """Read an ``ONBOARD_SMTP_URL``; messages never repeat the URL (it holds a password).

    Args:
        text: ``smtp://host[:port]``, ``smtp+starttls://user:password@host[:port]`` or
            ``smtps://user:password@host[:port]``; user and password URL-encoded.
        timeout: Seconds to wait for the server on each network operation.
        ca_file: Trusted certificates (PEM) instead of the system's.

    Returns:
        The SMTP settings, with the credentials decoded.

    Raises:
        SettingsError: If the URL is not one of those forms.
    """
    parts = urlsplit(text.strip())
    scheme = _SMTP_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise SettingsError(f"ONBOARD_SMTP_URL has an unknown scheme; {SMTP_HELP}")
    security, default_port = scheme
    try:
        port = parts.port or default_port
    except ValueError:
        raise SettingsError(f"ONBOARD_SMTP_URL has a bad port; {SMTP_HELP}") from None
    if not parts.hostname:
        raise SettingsError(f"ONBOARD_SMTP_URL names no host; {SMTP_HELP}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SettingsError(f"ONBOARD_SMTP_URL takes no path or query; {SMTP_HELP}")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if (username is None) != (password is None):
        raise SettingsError(
            f"ONBOARD_SMTP_URL needs both a user and a password, or neither; {SMTP_HELP}"
        )
    if username is not None and security == "plain":
        raise SettingsError(
            "ONBOARD_SMTP_URL: smtp:// would send the password unencrypted; "
            "use smtp+starttls:// or smtps://"
        )
    return SmtpSettings(parts.hostname, port, security, username, password, timeout, ca_file)


def _smtp(env: Mapping[str, str]) -> SmtpSettings | None:
    raw = env.get(PREFIX + "SMTP_URL", "").strip()
    if not raw:
        return None
    ca_file = env.get(PREFIX + "SMTP_CA_FILE", "").strip() or None
    if ca_file is not None and not Path(ca_file).is_file():
        raise SettingsError(f"{PREFIX}SMTP_CA_FILE is not a file: {ca_file}")
    return parse_smtp_url(raw, timeout=_float(env, "SMTP_TIMEOUT", 10.0), ca_file=ca_file)


def _mail_from(raw: str, public_url: str) -> str:
    raw = raw.strip()
    if not raw:
        return f"Onboard <no-reply@{urlsplit(public_url).hostname or 'localhost'}>"
    _name, address = parseaddr(raw)
    local, _, domain = address.rpartition("@")
    if (
        not local
        or not domain
        or any(ch.isspace() or not ch.isprintable() for ch in address)
        or any(ch in raw for ch in "\r\n")
    ):
        raise SettingsError(f"{PREFIX}MAIL_FROM must be an address or Name <address>, got {raw!r}")
    return raw


def _admin_emails(raw: str) -> frozenset[str]:
    emails = set()
    for item in filter(None, (part.strip() for part in raw.split(","))):
        email = unicodedata.normalize("NFC", item).lower()
        local, _, domain = email.rpartition("@")
        if not local or "." not in domain or any(ch.isspace() for ch in email):
            raise SettingsError(f"{PREFIX}ADMIN_EMAILS holds {item!r}, which is not an address")
        emails.add(email)
    return frozenset(emails)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from environment variables.

    Args:
        env: The environment to read; ``os.environ`` when omitted.

    Returns:
        The frozen settings.

    Raises:
        SettingsError: If a value is malformed, or production mode lacks a proper key or
            an SMTP server.
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
    smtp = _smtp(env)
    if smtp is None and environment == "production":
        raise SettingsError(f"production mode needs an SMTP server to send mail: {SMTP_HELP}")
    defaults = Settings()
    knobs: dict[str, Any] = {
        knob.name: _int(
            env, knob.name.upper(), getattr(defaults, knob.name), *knob.metadata[_BOUNDS]
        )
        for knob in fields(Settings)
        if _BOUNDS in knob.metadata
    }
    return Settings(
        environment=environment,
        database_url=env.get(PREFIX + "DATABASE_URL") or defaults.database_url,
        redis_url=env.get(PREFIX + "REDIS_URL") or None,
        public_url=(env.get(PREFIX + "PUBLIC_URL") or defaults.public_url).rstrip("/"),
        signing_keys=tuple(keys),
        **knobs,
        github=github,
        oidc=oidc,
        smtp=smtp,
        mail_from=_mail_from(
            env.get(PREFIX + "MAIL_FROM", ""), env.get(PREFIX + "PUBLIC_URL") or defaults.public_url
        ),
        mail_dir=Path(env.get(PREFIX + "MAIL_DIR") or defaults.mail_dir),
        admin_emails=_admin_emails(env.get(PREFIX + "ADMIN_EMAILS", "")),
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
