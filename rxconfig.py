"""Reflex configuration: everything comes from ``onboard_app.settings`` (``ONBOARD_*``)."""

import os
import sys

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

config = rx.Config(
    app_name="onboard_app",
    db_url=settings.database_url,
    redis_url=settings.redis_url,
    state_manager_mode="redis" if settings.redis_url else "disk",
    telemetry_enabled=False,
    # Production: only the public address may open the event websocket (a page on
    # another site cannot drive a visitor's session); development: any (Vite, :3000).
    cors_allowed_origins=allowed_origins(settings),
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
