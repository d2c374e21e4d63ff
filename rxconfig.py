"""Reflex configuration: everything comes from ``onboard_app.settings`` (``ONBOARD_*``).

It also points Reflex at the project's tools, so plain ``reflex run`` works in the activated
virtualenv without the Makefile.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import reflex as rx

from onboard_app.security import allowed_origins
from onboard_app.settings import SettingsError, get_settings


def _reflex_env_from_argv(argv: list[str]) -> str | None:
    """The ``--env`` of a ``reflex run`` command line."""
    for index, arg in enumerate(argv):
        if arg == "--env" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--env="):
            return arg.split("=", 1)[1]
    return None


# `reflex run` imports this file before it exports REFLEX_ENV_MODE, so the settings would
# see development mode under `--env prod`: export it first, as Reflex does a moment later.
if "REFLEX_ENV_MODE" not in os.environ and (_mode := _reflex_env_from_argv(sys.argv)):
    os.environ["REFLEX_ENV_MODE"] = _mode


TOOLS = Path(__file__).resolve().parent / ".tools"


def _bun() -> str | None:
    """The project's bun (``make install`` puts it in .tools from npm), else one on PATH."""
    local = TOOLS / "node_modules" / ".bin" / "bun"
    return str(local) if local.exists() else shutil.which("bun")


def _npm_registry() -> str | None:
    """The registry npm's own configuration names (user, project or CI .npmrc, npm's default)."""
    if (npm := shutil.which("npm")) is None:
        return None
    try:
        answer = subprocess.run(  # noqa: S603 (fixed arguments, npm from PATH)
            [npm, "config", "get", "registry"],
            cwd=TOOLS.parent,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return answer.stdout.strip() or None


def _default_env(name: str, value: Callable[[], str | None]) -> None:
    """Set ``name`` to ``value()`` unless it is set (Reflex, too, ignores blank values)."""
    if not os.environ.get(name, "").strip() and (chosen := value()):
        os.environ[name] = chosen


# Reflex reads these when it sets up the frontend, after importing this file, and its
# servers and bun inherit them. Without a bun it downloads an install script; without a
# registry it probes two public registries and writes the fastest into .web/bunfig.toml,
# overriding npm's own configuration (a company mirror).
_default_env("REFLEX_BUN_PATH", _bun)
_default_env("REFLEX_DIR", lambda: str(TOOLS / "reflex"))
_default_env("BUN_INSTALL_CACHE_DIR", lambda: str(TOOLS / "bun-cache"))
_default_env("REFLEX_CHECK_LATEST_VERSION", lambda: "0")
_default_env("NPM_CONFIG_REGISTRY", _npm_registry)


def _port(name: str) -> int | None:
    return int(os.environ[name]) if os.environ.get(name) else None


try:
    settings = get_settings()
except SettingsError as problem:
    raise SystemExit(f"Onboard configuration error: {problem}") from None

# With Redis, a worker keeps the state of the tabs whose sockets it holds in memory between
# their events (Reflex's opportunistic lock) and writes it back when another worker asks for
# it or the lease ends, instead of a Redis lock + read + write on every event. At 200 virtual
# users at 6x human pace it cut p95 event latency from 774-1127 ms to 429-478 ms (bench/load.py,
# 3 runs each). REFLEX_OPLOCK_ENABLED=false in the environment turns it off.
if settings.redis_url:
    os.environ.setdefault("REFLEX_OPLOCK_ENABLED", "true")


def _respawn_failed_workers() -> None:
    """Make Granian replace a backend worker that dies instead of stopping every worker.

    Reflex 0.10 builds Granian's server itself and passes it only the address, the log
    level and ``GRANIAN_WORKERS``, so the option is set on the class it builds. Granian
    still stops the app when a worker dies again within seconds of its replacement.
    """
    import granian.server

    base = granian.server.Server
    if getattr(base, "respawns_failed_workers", False):
        return

    class RespawningServer(base):  # type: ignore[valid-type,misc]
        respawns_failed_workers = True

        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("respawn_failed_workers", True)
            super().__init__(*args, **kwargs)

    granian.server.Server = RespawningServer  # type: ignore[misc]


# `reflex run --env prod`: a killed or crashed worker is replaced within a second and its
# tabs reconnect to a live worker (tests/scale/test_worker_kill.py).
if os.environ.get("REFLEX_ENV_MODE") == "prod":
    _respawn_failed_workers()

config = rx.Config(
    app_name="onboard_app",
    db_url=settings.database_url,
    redis_url=settings.redis_url,
    state_manager_mode="redis" if settings.redis_url else "disk",
    telemetry_enabled=False,
    # Production: only the public address may open the event websocket (a page on
    # another site cannot drive a visitor's session); development: any (Vite, :3000).
    cors_allowed_origins=allowed_origins(settings),
    # The client address (login and sign-up throttles) comes from the socket unless this
    # many reverse proxies in front of the app vouch for X-Forwarded-For (default 0: never).
    trusted_proxy_hops=settings.trusted_proxy_hops,
    show_built_with_reflex=False,
    # Unset means Reflex's defaults (3000 / 8000, moved on if busy in development).
    frontend_port=_port("ONBOARD_FRONTEND_PORT"),
    backend_port=_port("ONBOARD_BACKEND_PORT"),
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(accent_color="indigo", gray_color="slate", radius="large")
        ),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
