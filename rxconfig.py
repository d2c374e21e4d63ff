"""Reflex configuration: everything comes from ``onboard_app.settings`` (``ONBOARD_*``)."""

import os

import reflex as rx

from onboard_app.security import allowed_origins
from onboard_app.settings import SettingsError, get_settings

try:
    settings = get_settings()
except SettingsError as problem:
    raise SystemExit(f"Onboard configuration error: {problem}") from None

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
    frontend_port=int(os.environ["ONBOARD_FRONTEND_PORT"]) if "ONBOARD_FRONTEND_PORT" in os.environ else None,
    backend_port=int(os.environ["ONBOARD_BACKEND_PORT"]) if "ONBOARD_BACKEND_PORT" in os.environ else None,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(accent_color="indigo", gray_color="slate", radius="large")
        ),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
