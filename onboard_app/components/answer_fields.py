"""The answer controls shared by the wizard steps and the settings page."""

from __future__ import annotations

import reflex as rx
from reflex.event import EventHandler
from reflex_base.vars.base import Var

from onboard_app.components.fields import field
from onboard_app.services.onboarding import EXPERIENCE_LEVELS, MAX_BIO, MAX_NAME, ROLES, THEMES
from onboard_app.services.topics import MAX_INTERESTS, MIN_INTERESTS, TOPICS
from onboard_app.state.onboarding import AnswersForm


def profile_fields(state: type[AnswersForm]) -> rx.Component:
    """Display name, role and bio."""
    return rx.vstack(
        rx.cond(
            state.avatar_url,
            rx.hstack(
                rx.avatar(src=state.avatar_url, fallback="?", size="4", radius="full"),
                rx.text(
                    "Your avatar comes from your sign-in provider.", size="2", color_scheme="gray"
                ),
                align="center",
            ),
        ),
        field(
            "Display name",
            rx.input(
                value=state.display_name,
                on_change=state.set_display_name,
                id="display_name",
                placeholder="Ada Lovelace",
                auto_complete="name",
                size="3",
                width="100%",
                max_length=MAX_NAME,
            ),
            state.errors.get("display_name", ""),
            html_for="display_name",
        ),
        field(
            "Role",
            rx.select.root(
                rx.select.trigger(placeholder="Choose your role", width="100%", id="role"),
                rx.select.content(
                    *[rx.select.item(label, value=value) for value, label in ROLES.items()]
                ),
                value=state.role,
                on_change=state.set_role,
                size="3",
            ),
            state.errors.get("role", ""),
            html_for="role",
        ),
        field(
            "Bio (optional)",
            rx.text_area(
                value=state.bio,
                on_change=state.set_bio,
                id="bio",
                placeholder="A sentence or two about you.",
                rows="3",
                width="100%",
                max_length=MAX_BIO,
            ),
            state.errors.get("bio", ""),
            hint=f"Up to {MAX_BIO} characters.",
            html_for="bio",
        ),
        spacing="4",
        width="100%",
    )


def _chip(slug: str, label: str, state: type[AnswersForm]) -> rx.Component:
    selected = state.interests.contains(slug)
    return rx.button(
        rx.cond(selected, rx.icon("check", size=14), rx.icon("plus", size=14)),
        label,
        on_click=state.toggle_interest(slug),
        variant=rx.cond(selected, "solid", "outline"),
        radius="full",
        size="2",
        type="button",
        aria_pressed=rx.cond(selected, "true", "false"),
        id=f"topic-{slug}",
    )


def interest_fields(state: type[AnswersForm]) -> rx.Component:
    """Topic chips with a live count."""
    return rx.vstack(
        rx.flex(
            *[_chip(slug, label, state) for slug, label in TOPICS.items()],
            wrap="wrap",
            spacing="2",
            role="group",
            aria_label="Topics",
        ),
        rx.text(
            state.interest_count,
            f" selected · pick {MIN_INTERESTS} to {MAX_INTERESTS}",
            size="2",
            color_scheme="gray",
            id="interest-count",
        ),
        rx.cond(
            state.errors.get("interests", ""),
            rx.text(state.errors.get("interests", ""), color_scheme="red", size="2", role="alert"),
        ),
        spacing="3",
        width="100%",
    )


DIGEST_CHOICES = {"yes": "Yes, send it", "no": "No thanks"}


def _radio_row(
    options: dict[str, str], prefix: str, value: Var, on_change: EventHandler
) -> rx.Component:
    """A wrapping row of labelled radio buttons; each item has the id ``<prefix>-<value>``."""
    return rx.radio_group.root(
        rx.flex(
            *[
                rx.el.label(
                    rx.flex(
                        rx.radio_group.item(value=key, id=f"{prefix}-{key}"),
                        label,
                        spacing="2",
                        align="center",
                    ),
                    html_for=f"{prefix}-{key}",
                )
                for key, label in options.items()
            ],
            spacing="4",
            wrap="wrap",
        ),
        value=value,
        on_change=on_change,
        size="3",
    )


def preference_fields(state: type[AnswersForm]) -> rx.Component:
    """Experience level, email digest and theme."""
    return rx.vstack(
        field(
            "Experience level",
            _radio_row(
                EXPERIENCE_LEVELS, "level", state.experience_level, state.set_experience_level
            ),
            state.errors.get("experience_level", ""),
        ),
        field(
            "Weekly email digest",
            _radio_row(DIGEST_CHOICES, "digest", state.email_digest, state.set_email_digest),
            state.errors.get("email_digest", ""),
        ),
        field(
            "Theme",
            _radio_row(THEMES, "theme", state.theme, state.set_theme),
            state.errors.get("theme", ""),
        ),
        spacing="5",
        width="100%",
    )
