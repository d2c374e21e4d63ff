"""Production refuses to start with a weak or missing signing key; its config is strict.

``tests/unit/test_settings.py`` checks ``load_settings`` with a mapping; here the real entry
points run as an operator would: ``python -m onboard_app.cli check`` and ``reflex run``.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from onboard_app.security import allowed_origins
from onboard_app.settings import KEY_HELP
from tests.conftest import make_settings
from tests.e2e.conftest import app_environment, free_port
from tests.security.conftest import ROOT

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else "python"

WEAK_KEYS = {
    "missing": None,
    "empty": "",
    "short": secrets.token_urlsafe(16),
    "31 bytes hex": secrets.token_hex(31),
    "passphrase": "correct horse battery staple is not a key at all!!",
    "short with kid": "prod-1:" + base64.urlsafe_b64encode(b"x" * 20).decode(),
}


def cli_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m onboard_app.cli check`` with ``env``, as an operator would."""
    return subprocess.run(
        [PYTHON, "-m", "onboard_app.cli", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def production_env(tmp: Path, key: str | None, **extra: str) -> dict[str, str]:
    env = app_environment(tmp, free_port(), ONBOARD_DEV_KEY_FILE=str(tmp / "dev-key"))
    env.pop("ONBOARD_SIGNING_KEY", None)
    if key is not None:
        env["ONBOARD_SIGNING_KEY"] = key
    env.update(extra)
    return env


def run_until_exit_or_up(
    command: list[str], env: dict[str, str], port: int
) -> tuple[int | None, str]:
    """Run a server command; return its exit status, or ``None`` if it came up (then stop it)."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    status: int | None = None
    while time.monotonic() < deadline:
        status = process.poll()
        if status is not None:
            break
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/ping", timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    output = process.communicate(timeout=15)[0].decode(errors="replace")
    return status, output


@pytest.mark.parametrize("key", list(WEAK_KEYS.values()), ids=list(WEAK_KEYS))
def test_cli_check_refuses_a_weak_or_missing_key_in_production(
    tmp_path: Path, key: str | None
) -> None:
    env = production_env(tmp_path, key)
    done = cli_check(env)
    assert done.returncode == 2
    assert "configuration error" in done.stderr
    assert "ONBOARD_SIGNING_KEY" in done.stderr and "secrets.token_urlsafe(32)" in done.stderr
    assert not (tmp_path / "dev-key").exists()  # no silent fallback to a generated key


def test_cli_check_accepts_a_proper_production_key(tmp_path: Path) -> None:
    """Control: the refusals above are about the key, not the command."""
    env = production_env(tmp_path, "prod-1:" + secrets.token_urlsafe(32))
    done = cli_check(env)
    assert done.returncode == 0, done.stderr
    assert "settings OK (production, 1 key(s))" in done.stdout


@pytest.mark.parametrize("key", [None, WEAK_KEYS["short"]], ids=["missing", "short"])
def test_reflex_run_prod_refuses_a_weak_or_missing_key(tmp_path: Path, key: str | None) -> None:
    port = free_port()
    env = production_env(tmp_path, key)
    command = [PYTHON, "-m", "reflex", "run", "--env", "prod", "--single-port"]
    status, output = run_until_exit_or_up([*command, "--frontend-port", str(port)], env, port)
    assert status not in (None, 0), output[-2000:]
    assert "Onboard configuration error" in output
    assert KEY_HELP in " ".join(output.split())
    assert not (tmp_path / "dev-key").exists()


def test_reflex_run_env_prod_alone_means_production(tmp_path: Path) -> None:
    """README: ONBOARD_ENV defaults to production under ``reflex run --env prod``."""
    port = free_port()
    env = production_env(tmp_path, None)
    env.pop("ONBOARD_ENV")
    command = [PYTHON, "-m", "reflex", "run", "--env", "prod", "--backend-only"]
    status, output = run_until_exit_or_up([*command, "--backend-port", str(port)], env, port)
    assert status not in (None, 0), "the app started without a signing key"
    assert "Onboard configuration error" in output
    assert not (tmp_path / "dev-key").exists()


def test_websocket_origins_are_the_public_address_in_production_only() -> None:
    production = make_settings(environment="production", public_url="https://onboard.example/app/")
    assert allowed_origins(production) == ["https://onboard.example"]
    assert allowed_origins(make_settings(environment="development")) == ["*"]


def test_rxconfig_builds_the_origin_allow_list_from_the_settings(tmp_path: Path) -> None:
    env = production_env(
        tmp_path, secrets.token_urlsafe(32), ONBOARD_PUBLIC_URL="https://Onboard.Example:8443"
    )
    script = "import rxconfig; print(list(rxconfig.config.cors_allowed_origins))"
    done = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['https://onboard.example:8443']"
