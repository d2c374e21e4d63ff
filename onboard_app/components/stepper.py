"""The wizard's progress indicator."""

from __future__ import annotations

import reflex as rx

from onboard_app import routes
from onboard_app.services.onboarding import step_index, title_of, wizard_steps
from onboard_app.state.onboarding import OnboardingState


def _dot(position: int, label: str, href: str) -> rx.Component:
    number = position + 1
    done = OnboardingState.step_number > number
    current = OnboardingState.step_number == number
    badge = rx.center(
        rx.cond(done, rx.icon("check", size=14), rx.text(str(number), size="1", weight="bold")),
        width="28px",
        height="28px",
        border_radius="50%",
        background=rx.cond(done | current, "var(--accent-9)", "var(--gray-4)"),
        color=rx.cond(done | current, "white", "var(--gray-11)"),
        flex_shrink="0",
    )
    text = rx.text(
        label,
        size="2",
        weight=rx.cond(current, "bold", "regular"),
        color=rx.cond(current, "var(--gray-12)", "var(--gray-10)"),
        display=["none", "none", "block"],
    )
    return rx.cond(
        done,
        rx.link(rx.hstack(badge, text, align="center", spacing="2"), href=href, underline="none"),
        rx.hstack(
            badge,
            text,
            align="center",
            spacing="2",
            aria_current=rx.cond(current, "step", ""),
        ),
    )


def stepper() -> rx.Component:
    """Numbered steps with the current one highlighted and a progress bar under them."""
    items: list[rx.Component] = []
    for step in wizard_steps():
        if items:
            items.append(
                rx.box(flex="1", height="2px", background="var(--gray-5)", min_width="12px")
            )
        items.append(_dot(step_index(step), title_of(step), routes.onboarding(step)))
    return rx.vstack(
        rx.hstack(*items, align="center", width="100%", spacing="2"),
        rx.text(
            "Step ",
            OnboardingState.step_number,
            f" of {len(wizard_steps())}",
            size="1",
            color_scheme="gray",
            id="step-counter",
        ),
        width="100%",
        spacing="2",
        role="navigation",
        aria_label="Onboarding progress",
    )
