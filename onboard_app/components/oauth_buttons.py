"""Buttons for the configured OAuth / OpenID Connect providers (none when unconfigured)."""

from __future__ import annotations

import reflex as rx

from onboard_app.settings import get_settings


def oauth_buttons() -> rx.Component:
    """One button per configured provider, then an "or" divider; nothing if none."""
    settings = get_settings()
    providers = [p for p in (settings.github, settings.oidc) if p is not None]
    if not providers:
        return rx.fragment()
    from onboard_app.state.oauth import OAuthState

    buttons = [
        rx.button(
            rx.image(
                src="/github.svg", width="16px", height="16px", alt="", class_name="github-mark"
            )
            if p.name == "github"
            else rx.icon("key-round", size=16),
            p.label,
            on_click=OAuthState.start_login(p.name),
            variant="outline",
            size="3",
            width="100%",
            type="button",
            id=f"oauth-{p.name}",
        )
        for p in providers
    ]
    return rx.vstack(*buttons, or_divider(), spacing="3", width="100%")


def or_divider() -> rx.Component:
    """A rule with "or" in its middle, between two ways of signing in."""
    return rx.hstack(
        rx.separator(size="4"),
        rx.text("or", size="1", color_scheme="gray"),
        rx.separator(size="4"),
        align="center",
        width="100%",
    )
