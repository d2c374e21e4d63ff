"""load_settings from a plain mapping: keys, keyring, knobs, OAuth blocks, environment."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from pathlib import Path

import pytest

from onboard_app.settings import (
    MIN_KEY_BYTES,
    Settings,
    SettingsError,
    SigningKey,
    decode_key,
    load_settings,
)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "dev-key"


def dev_env(key_file: Path, **extra: str) -> dict[str, str]:
    return {"ONBOARD_DEV_KEY_FILE": str(key_file), **extra}


def prod_env(**extra: str) -> dict[str, str]:
    return {
        "ONBOARD_ENV": "production",
        "ONBOARD_SIGNING_KEY": secrets.token_urlsafe(32),
        "ONBOARD_SMTP_URL": "smtp://127.0.0.1:25",
        **extra,
    }


# --- development key file -------------------------------------------------------------------


def test_dev_generates_key_file_once_and_reuses_it(key_file: Path) -> None:
    assert not key_file.exists()
    first = load_settings(dev_env(key_file))
    assert key_file.exists()
    content = key_file.read_text()
    second = load_settings(dev_env(key_file))
    assert key_file.read_text() == content
    assert first.environment == second.environment == "development"
    assert not first.is_production
    assert len(first.signing_keys) == 1
    assert first.current_key.kid == second.current_key.kid
    assert first.current_key.secret == second.current_key.secret
    assert len(first.current_key.secret) >= MIN_KEY_BYTES
    assert first.current_key.not_after is None


def test_dev_key_file_is_private(key_file: Path) -> None:
    load_settings(dev_env(key_file))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_dev_key_file_regenerated_when_deleted(key_file: Path) -> None:
    first = load_settings(dev_env(key_file))
    key_file.unlink()
    second = load_settings(dev_env(key_file))
    assert first.current_key.kid != second.current_key.kid
    assert first.current_key.secret != second.current_key.secret


def test_dev_key_file_with_short_key_refused(key_file: Path) -> None:
    key_file.parent.mkdir(parents=True)
    key_file.write_text(secrets.token_urlsafe(16))
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings(dev_env(key_file))


def test_explicit_key_wins_over_dev_file(key_file: Path) -> None:
    raw = secrets.token_bytes(32)
    settings = load_settings(dev_env(key_file, ONBOARD_SIGNING_KEY=raw.hex()))
    assert settings.current_key.secret == raw
    assert not key_file.exists()


# --- production -----------------------------------------------------------------------------


def test_production_without_key_says_how_to_make_one(key_file: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(dev_env(key_file, ONBOARD_ENV="production"))
    message = str(info.value)
    assert "ONBOARD_SIGNING_KEY" in message
    assert "secrets.token_urlsafe(32)" in message
    assert not key_file.exists()  # no silent fallback to a generated key


def test_production_ignores_an_existing_dev_key_file(key_file: Path) -> None:
    load_settings(dev_env(key_file))  # creates the file
    with pytest.raises(SettingsError):
        load_settings(dev_env(key_file, ONBOARD_ENV="production"))


def test_reflex_prod_mode_implies_production(key_file: Path) -> None:
    with pytest.raises(SettingsError, match="production"):
        load_settings(dev_env(key_file, REFLEX_ENV_MODE="prod"))
    key = secrets.token_urlsafe(32)
    settings = load_settings(
        {"REFLEX_ENV_MODE": "prod", "ONBOARD_SIGNING_KEY": key, "ONBOARD_SMTP_URL": "smtp://mx"}
    )
    assert settings.is_production
    assert settings.environment == "production"


def test_reflex_dev_mode_is_development(key_file: Path) -> None:
    assert not load_settings(dev_env(key_file, REFLEX_ENV_MODE="dev")).is_production


def test_onboard_env_is_case_and_space_insensitive() -> None:
    assert load_settings(prod_env(ONBOARD_ENV="  Production ")).is_production


@pytest.mark.parametrize("env", ["staging", "prod", "dev", "test"])
def test_unknown_environment_refused(key_file: Path, env: str) -> None:
    with pytest.raises(SettingsError, match="development or production"):
        load_settings(dev_env(key_file, ONBOARD_ENV=env))


# --- key formats ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 16, 31])
def test_short_key_refused(size: int) -> None:
    short = base64.urlsafe_b64encode(secrets.token_bytes(size)).decode().rstrip("=") or "AA"
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings(prod_env(ONBOARD_SIGNING_KEY=short))


def test_short_hex_key_refused() -> None:
    with pytest.raises(SettingsError, match="31 bytes"):
        load_settings(prod_env(ONBOARD_SIGNING_KEY=secrets.token_hex(31)))


def test_hex_key_accepted() -> None:
    raw = secrets.token_bytes(32)
    for text in (raw.hex(), raw.hex().upper(), f"  {raw.hex()}\n"):
        assert load_settings(prod_env(ONBOARD_SIGNING_KEY=text)).current_key.secret == raw


def test_base64url_key_accepted_with_and_without_padding() -> None:
    raw = secrets.token_bytes(33)  # a multiple of 3: no padding at all
    raw32 = secrets.token_bytes(32)  # 43 characters + one '='
    for key_raw in (raw, raw32):
        padded = base64.urlsafe_b64encode(key_raw).decode()
        for text in (padded, padded.rstrip("=")):
            settings = load_settings(prod_env(ONBOARD_SIGNING_KEY=text))
            assert settings.current_key.secret == key_raw


def test_plain_key_gets_a_stable_derived_kid() -> None:
    raw = secrets.token_bytes(32)
    text = base64.urlsafe_b64encode(raw).decode()
    one = load_settings(prod_env(ONBOARD_SIGNING_KEY=text)).current_key
    two = load_settings(prod_env(ONBOARD_SIGNING_KEY=text)).current_key
    assert one.kid == two.kid == "k-" + hashlib.sha256(raw).hexdigest()[:12]
    assert raw.hex() not in one.kid


def test_kid_colon_key_form() -> None:
    raw = secrets.token_bytes(32)
    settings = load_settings(prod_env(ONBOARD_SIGNING_KEY=f"prod-2024.a_1:{raw.hex()}"))
    assert settings.current_key == SigningKey("prod-2024.a_1", raw)


@pytest.mark.parametrize("kid", ["", " ", "bad kid", "a/b", "../x", "k" * 65, "k;drop"])
def test_bad_kid_refused(kid: str) -> None:
    with pytest.raises(SettingsError, match="key id"):
        load_settings(prod_env(ONBOARD_SIGNING_KEY=f"{kid}:{secrets.token_hex(32)}"))


@pytest.mark.parametrize("kid", ["cl\u00e9", "\uff4b\uff45\uff59", "k\u0663"])
def test_non_ascii_kid_refused(kid: str) -> None:
    with pytest.raises(SettingsError, match="key id"):
        load_settings(prod_env(ONBOARD_SIGNING_KEY=f"{kid}:{secrets.token_hex(32)}"))


def test_repr_does_not_leak_secret() -> None:
    raw = secrets.token_bytes(32)
    settings = load_settings(
        prod_env(
            ONBOARD_SIGNING_KEY=raw.hex(),
            ONBOARD_GITHUB_CLIENT_ID="gh-id",
            ONBOARD_GITHUB_CLIENT_SECRET="gh-very-secret",
        )
    )
    text = repr(settings)
    assert raw.hex() not in text
    assert repr(raw) not in text
    assert "gh-very-secret" not in text


@pytest.mark.parametrize("text", ["!!!!", "z" * 3, "not base64 at all \u00e9"])
def test_non_key_text_refused(text: str) -> None:
    with pytest.raises(SettingsError):
        decode_key(text)


def test_passphrase_is_not_a_key() -> None:
    with pytest.raises(SettingsError, match="not base64 or hex"):
        decode_key("this is my long passphrase, surely good enough for a key!! really it is")


# --- old keys -------------------------------------------------------------------------------


def test_old_signing_keys_parsed_after_the_current_key() -> None:
    a, b = secrets.token_bytes(32), secrets.token_bytes(32)
    old = f"old-1:{a.hex()}:1700000000, old-2:{base64.urlsafe_b64encode(b).decode()}:1800000000,"
    settings = load_settings(prod_env(ONBOARD_OLD_SIGNING_KEYS=old))
    assert len(settings.signing_keys) == 3
    assert settings.signing_keys[0].not_after is None
    assert settings.signing_keys[1:] == (
        SigningKey("old-1", a, 1700000000),
        SigningKey("old-2", b, 1800000000),
    )


def test_empty_old_keys_is_fine() -> None:
    for value in ("", " ", ",", " , "):
        assert len(load_settings(prod_env(ONBOARD_OLD_SIGNING_KEYS=value)).signing_keys) == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("old-1:{k}", "kid:key:not_after"),
        ("{k}", "kid:key:not_after"),
        ("old-1:{k}:1700000000:extra", "kid:key:not_after"),
        ("old-1:{k}:soon", "Unix time"),
        ("old-1:{k}:", "Unix time"),
        ("old-1:{k}:1.5", "Unix time"),
        ("bad kid:{k}:1700000000", "key id"),
        (":{k}:1700000000", "key id"),
        ("old-1:abcd:1700000000", "at least 32"),
    ],
)
def test_bad_old_key_formats_refused(value: str, message: str) -> None:
    value = value.format(k=secrets.token_hex(32))
    with pytest.raises(SettingsError, match=message):
        load_settings(prod_env(ONBOARD_OLD_SIGNING_KEYS=value))


def test_duplicate_old_kids_refused() -> None:
    a, b = secrets.token_hex(32), secrets.token_hex(32)
    with pytest.raises(SettingsError, match="unique"):
        load_settings(prod_env(ONBOARD_OLD_SIGNING_KEYS=f"old:{a}:1,old:{b}:2"))


def test_old_kid_equal_to_current_kid_refused() -> None:
    a, b = secrets.token_hex(32), secrets.token_hex(32)
    with pytest.raises(SettingsError, match="unique"):
        load_settings(
            prod_env(ONBOARD_SIGNING_KEY=f"main:{a}", ONBOARD_OLD_SIGNING_KEYS=f"main:{b}:1")
        )


# --- integer knobs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "field", "default"),
    [
        ("TOKEN_TTL", "token_ttl", 3600),
        ("TOKEN_REFRESH_AFTER", "token_refresh_after", 600),
        ("SESSION_MAX_AGE", "session_max_age", 7 * 24 * 3600),
        ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "login_max_failures_per_account", 5),
        ("LOGIN_MAX_FAILURES_PER_CLIENT", "login_max_failures_per_client", 20),
        ("LOGIN_FAILURE_WINDOW", "login_failure_window", 900),
    ],
)
def test_int_knobs(name: str, field: str, default: int) -> None:
    var = f"ONBOARD_{name}"
    assert getattr(load_settings(prod_env()), field) == default
    assert getattr(load_settings(prod_env(**{var: ""})), field) == default
    assert getattr(load_settings(prod_env(**{var: "  "})), field) == default
    assert getattr(load_settings(prod_env(**{var: " 1234 "})), field) == 1234
    for junk in ("abc", "1.5", "1e3", "0x10", "ten", "12s"):
        with pytest.raises(SettingsError, match=var):
            load_settings(prod_env(**{var: junk}))
    for small in ("0", "-1", "-3600"):
        with pytest.raises(SettingsError, match="at least"):
            load_settings(prod_env(**{var: small}))


def test_password_hash_slots_default_to_half_the_cores() -> None:
    var = "ONBOARD_PASSWORD_HASH_SLOTS"
    assert load_settings(prod_env()).password_hash_slots == max(1, (os.cpu_count() or 2) // 2)
    assert load_settings(prod_env(**{var: "3"})).password_hash_slots == 3
    for bad in ("0", "65", "two"):
        with pytest.raises(SettingsError, match=var):
            load_settings(prod_env(**{var: bad}))


def test_other_values() -> None:
    settings = load_settings(
        prod_env(
            ONBOARD_DATABASE_URL="postgresql+psycopg://u@h/db",
            ONBOARD_REDIS_URL="redis://localhost:6379/0",
            ONBOARD_PUBLIC_URL="https://onboard.example.com///",
        )
    )
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.public_url == "https://onboard.example.com"
    assert (
        settings.oauth_callback_url("github") == "https://onboard.example.com/auth/callback/github"
    )
    plain = load_settings(prod_env(ONBOARD_REDIS_URL=""))
    assert plain.redis_url is None
    assert plain.public_url == Settings().public_url
    assert plain.database_url == Settings().database_url


def test_no_key_current_key_raises_with_help() -> None:
    with pytest.raises(SettingsError, match="ONBOARD_SIGNING_KEY"):
        _ = Settings().current_key


# --- OAuth blocks ---------------------------------------------------------------------------


def test_no_oauth_unless_configured() -> None:
    settings = load_settings(prod_env())
    assert settings.github is None
    assert settings.oidc is None


@pytest.mark.parametrize(
    "extra",
    [
        {"ONBOARD_GITHUB_CLIENT_ID": "id"},
        {"ONBOARD_GITHUB_CLIENT_SECRET": "secret"},
        {"ONBOARD_GITHUB_CLIENT_ID": "", "ONBOARD_GITHUB_CLIENT_SECRET": "secret"},
    ],
)
def test_partial_github_config_gives_no_github(extra: dict[str, str]) -> None:
    assert load_settings(prod_env(**extra)).github is None


def test_github_block_when_configured() -> None:
    settings = load_settings(
        prod_env(ONBOARD_GITHUB_CLIENT_ID="gh-id", ONBOARD_GITHUB_CLIENT_SECRET="gh-secret")
    )
    github = settings.github
    assert github is not None
    assert (github.name, github.client_id, github.client_secret) == ("github", "gh-id", "gh-secret")
    assert github.authorize_url == "https://github.com/login/oauth/authorize"
    assert github.token_url == "https://github.com/login/oauth/access_token"
    assert github.api_url == "https://api.github.com"
    assert "user:email" in github.scope
    assert github.timeout == 10.0
    assert settings.oidc is None


def test_github_urls_overridable() -> None:
    settings = load_settings(
        prod_env(
            ONBOARD_GITHUB_CLIENT_ID="id",
            ONBOARD_GITHUB_CLIENT_SECRET="s",
            ONBOARD_GITHUB_API_URL="http://127.0.0.1:9999/api/",
            ONBOARD_OAUTH_TIMEOUT="2.5",
        )
    )
    assert settings.github is not None
    assert settings.github.api_url == "http://127.0.0.1:9999/api"
    assert settings.github.timeout == 2.5


def test_junk_oauth_timeout_is_a_settings_error() -> None:
    with pytest.raises(SettingsError):
        load_settings(
            prod_env(
                ONBOARD_GITHUB_CLIENT_ID="id",
                ONBOARD_GITHUB_CLIENT_SECRET="s",
                ONBOARD_OAUTH_TIMEOUT="ten",
            )
        )


def test_oidc_block_when_configured() -> None:
    settings = load_settings(
        prod_env(ONBOARD_OIDC_ISSUER="https://id.example.com/", ONBOARD_OIDC_CLIENT_ID="oidc-id")
    )
    oidc = settings.oidc
    assert oidc is not None
    assert oidc.name == "oidc"
    assert oidc.issuer == "https://id.example.com"
    assert oidc.client_id == "oidc-id"
    assert oidc.client_secret == ""
    assert oidc.scope == "openid email profile"
    assert settings.github is None


@pytest.mark.parametrize(
    "extra", [{"ONBOARD_OIDC_ISSUER": "https://id.example.com"}, {"ONBOARD_OIDC_CLIENT_ID": "x"}]
)
def test_partial_oidc_config_gives_no_oidc(extra: dict[str, str]) -> None:
    assert load_settings(prod_env(**extra)).oidc is None


# --- mail -----------------------------------------------------------------------------------


def test_production_without_smtp_says_how_to_configure_it() -> None:
    env = prod_env()
    del env["ONBOARD_SMTP_URL"]
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    message = str(info.value)
    assert "production mode needs an SMTP server" in message
    assert "ONBOARD_SMTP_URL" in message
    assert "smtp+starttls://" in message and "smtps://" in message
    with pytest.raises(SettingsError, match="ONBOARD_SMTP_URL"):
        load_settings({**env, "ONBOARD_SMTP_URL": "  "})


def test_development_without_smtp_uses_the_mailbox_folder(key_file: Path, tmp_path: Path) -> None:
    settings = load_settings(dev_env(key_file))
    assert settings.smtp is None
    assert settings.mail_dir == Settings().mail_dir
    assert settings.mail_dir.parts[-2:] == (".onboard", "mail")
    moved = load_settings(dev_env(key_file, ONBOARD_MAIL_DIR=str(tmp_path / "box")))
    assert moved.mail_dir == tmp_path / "box"


@pytest.mark.parametrize(
    ("url", "security", "port"),
    [
        ("smtp://mail.example.com", "plain", 25),
        ("smtp://mail.example.com:2525", "plain", 2525),
        ("smtp+starttls://u:p@mail.example.com", "starttls", 587),
        ("SMTP+STARTTLS://u:p@mail.example.com:2587/", "starttls", 2587),
        ("smtps://u:p@mail.example.com", "tls", 465),
        ("smtps://u:p@[::1]:1465", "tls", 1465),
    ],
)
def test_smtp_url_forms(url: str, security: str, port: int) -> None:
    smtp = load_settings(prod_env(ONBOARD_SMTP_URL=url)).smtp
    assert smtp is not None
    assert (smtp.security, smtp.port) == (security, port)
    assert smtp.host in ("mail.example.com", "::1")
    assert smtp.timeout == 10.0
    assert smtp.ca_file is None


def test_smtp_credentials_are_url_decoded_and_kept_out_of_reprs() -> None:
    url = "smtp+starttls://mailer%40example.com:p%40ss%3Aw%2Frd%25@smtp.example.com:587"
    settings = load_settings(prod_env(ONBOARD_SMTP_URL=url))
    smtp = settings.smtp
    assert smtp is not None
    assert smtp.username == "mailer@example.com"
    assert smtp.password == "p@ss:w/rd%"
    assert "p@ss" not in repr(smtp) and "p%40ss" not in repr(settings)
    assert smtp.host == "smtp.example.com"
    without = load_settings(prod_env(ONBOARD_SMTP_URL="smtp://relay.internal:25")).smtp
    assert without is not None and without.username is None and without.password is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://mail.example.com", "unknown scheme"),
        ("smtp+ssl://u:p@mail.example.com", "unknown scheme"),
        ("mail.example.com:25", "unknown scheme"),
        ("smtp://", "no host"),
        ("smtps://u:secret-pass@:465", "no host"),
        ("smtp://mail.example.com:port", "bad port"),
        ("smtp://mail.example.com:99999", "bad port"),
        ("smtps://u:secret-pass@mail.example.com/inbox", "no path"),
        ("smtps://u:secret-pass@mail.example.com?x=1", "no path"),
        ("smtps://only-user@mail.example.com", "both a user and a password"),
        ("smtp://u:secret-pass@mail.example.com", "unencrypted"),
    ],
)
def test_bad_smtp_urls_are_refused_without_echoing_the_password(url: str, reason: str) -> None:
    with pytest.raises(SettingsError, match=reason) as info:
        load_settings(prod_env(ONBOARD_SMTP_URL=url))
    assert "secret-pass" not in str(info.value)


def test_smtp_timeout_and_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    smtp = load_settings(
        prod_env(
            ONBOARD_SMTP_URL="smtps://u:p@mx.example.com",
            ONBOARD_SMTP_TIMEOUT="2.5",
            ONBOARD_SMTP_CA_FILE=str(ca),
        )
    ).smtp
    assert smtp is not None and smtp.timeout == 2.5 and smtp.ca_file == str(ca)
    for bad in ("0", "-1", "301", "soon"):
        with pytest.raises(SettingsError, match="ONBOARD_SMTP_TIMEOUT"):
            load_settings(prod_env(ONBOARD_SMTP_TIMEOUT=bad))
    with pytest.raises(SettingsError, match="ONBOARD_SMTP_CA_FILE"):
        load_settings(prod_env(ONBOARD_SMTP_CA_FILE=str(tmp_path / "missing.pem")))


def test_mail_from_defaults_to_the_public_host() -> None:
    assert load_settings(prod_env()).mail_from == "Onboard <no-reply@localhost>"
    settings = load_settings(prod_env(ONBOARD_PUBLIC_URL="https://app.example.org/"))
    assert settings.mail_from == "Onboard <no-reply@app.example.org>"


@pytest.mark.parametrize("value", ["hello@example.com", "Onboard Team <team@example.com>"])
def test_mail_from_accepts_an_address_or_a_named_address(value: str) -> None:
    assert load_settings(prod_env(ONBOARD_MAIL_FROM=f" {value} ")).mail_from == value


@pytest.mark.parametrize(
    "value",
    [
        "no-at-sign",
        "Team <>",
        "@example.com",
        "team@",
        "team@example.com\r\nBcc: victim@example.com",
        "Team <team@example.com>\nX-Injected: 1",
        "te am@example.com",
    ],
)
def test_mail_from_refuses_junk_and_header_injection(value: str) -> None:
    with pytest.raises(SettingsError, match="ONBOARD_MAIL_FROM"):
        load_settings(prod_env(ONBOARD_MAIL_FROM=value))


def test_a_whole_number_setting_is_checked_against_its_bounds() -> None:
    var = "ONBOARD_TRUSTED_PROXY_HOPS"
    assert load_settings(prod_env()).trusted_proxy_hops == 0
    assert load_settings(prod_env(**{var: "0"})).trusted_proxy_hops == 0
    assert load_settings(prod_env(**{var: "10"})).trusted_proxy_hops == 10
    with pytest.raises(SettingsError, match="ONBOARD_TRUSTED_PROXY_HOPS must be at most 10"):
        load_settings(prod_env(**{var: "11"}))
    with pytest.raises(SettingsError, match="at least 0"):
        load_settings(prod_env(**{var: "-1"}))
    with pytest.raises(SettingsError, match="whole number"):
        load_settings(prod_env(**{var: "2 hops"}))


@pytest.mark.parametrize("name", ["TOKEN_TTL", "SESSION_MAX_AGE"])
def test_lifetimes_have_a_one_minute_floor(name: str) -> None:
    with pytest.raises(SettingsError, match="at least 60"):
        load_settings(prod_env(**{f"ONBOARD_{name}": "59"}))
    assert load_settings(prod_env(**{f"ONBOARD_{name}": "60"}))
