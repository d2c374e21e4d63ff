"""``/onboarding/<step>``: the wizard pages."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx
from reflex.event import EventSpec

from onboard_app import routes
from onboard_app.components.answer_fields import interest_fields, preference_fields, profile_fields
from onboard_app.components.layout import brand, session_watch, themed
from onboard_app.components.stepper import stepper
from onboard_app.services.onboarding import Step
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState


def _nav(primary: rx.Component, *, first: bool = False) -> rx.Component:
    return rx.hstack(
        rx.cond(
            first,
            rx.button(
                "Log out",
                variant="ghost",
                color_scheme="gray",
                type="button",
                on_click=SessionState.log_out,
                id="wizard-logout",
            ),
            rx.button(
                rx.icon("arrow-left", size=16),
                "Back",
                variant="soft",
                color_scheme="gray",
                type="button",
                on_click=OnboardingState.go_back,
                id="back",
            ),
        ),
        rx.spacer(),
        primary,
        width="100%",
        padding_top="0.5rem",
    )


def _next_button(label: str = "Next") -> rx.Component:
    return rx.button(
        label,
        rx.cond(OnboardingState.saving, rx.spinner(size="2"), rx.icon("arrow-right", size=16)),
        type="submit",
        size="3",
        disabled=OnboardingState.saving,
        id="next",
    )


def _step_form(
    body: rx.Component, submit: Callable[[], EventSpec], *, first: bool = False
) -> rx.Component:
    return rx.form(
        rx.vstack(body, _nav(_next_button(), first=first), spacing="5", width="100%"),
        on_submit=lambda _form: submit(),
        width="100%",
    )


def _summary_row(title: str, value: rx.Component, step: Step) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text(title, size="1", color_scheme="gray", weight="medium"), value, spacing="1"
        ),
        rx.spacer(),
        rx.link("Edit", href=routes.onboarding(step), size="2", id=f"edit-{step.value}"),
        width="100%",
        align="start",
        padding_y="0.75rem",
        border_bottom="1px solid var(--gray-4)",
    )


def review_body() -> rx.Component:
    """Summary of every answer with a link back to its step."""
    state = OnboardingState
    return rx.vstack(
        _summary_row(
            "Profile",
            rx.vstack(
                rx.text(state.display_name, weight="bold", id="review-name"),
                rx.text(state.role_label, size="2"),
                rx.cond(state.bio, rx.text(state.bio, size="2", color_scheme="gray")),
                spacing="0",
            ),
            Step.PROFILE,
        ),
        _summary_row(
            "Interests",
            rx.flex(
                rx.foreach(
                    state.interest_labels, lambda label: rx.badge(label, size="2", radius="full")
                ),
                wrap="wrap",
                spacing="2",
                id="review-interests",
            ),
            Step.INTERESTS,
        ),
        _summary_row(
            "Preferences",
            rx.text(
                state.experience_label,
                " · ",
                state.digest_label,
                " · Theme: ",
                state.theme_label,
                size="2",
            ),
            Step.PREFERENCES,
        ),
        _nav(
            rx.button(
                "Finish",
                rx.cond(state.saving, rx.spinner(size="2"), rx.icon("check", size=16)),
                on_click=state.finish_onboarding,
                size="3",
                disabled=state.saving,
                id="finish",
            )
        ),
        width="100%",
        spacing="0",
    )


STEP_BODIES: dict[Step, Callable[[], rx.Component]] = {
    Step.PROFILE: lambda: _step_form(
        profile_fields(OnboardingState), OnboardingState.submit_profile, first=True
    ),
    Step.INTERESTS: lambda: _step_form(
        interest_fields(OnboardingState), OnboardingState.submit_interests
    ),
    Step.PREFERENCES: lambda: _step_form(
        preference_fields(OnboardingState), OnboardingState.submit_preferences
    ),
    Step.REVIEW: review_body,
}


def wizard_page(step: Step) -> Callable[[], rx.Component]:
    """The page function of one wizard step."""

    def page() -> rx.Component:
        return themed(
            rx.box(
                session_watch(),
                rx.box(
                    rx.vstack(
                        brand("5"),
                        rx.card(
                            rx.cond(
                                OnboardingState.loaded,
                                rx.vstack(
                                    stepper(),
                                    rx.separator(size="4"),
                                    rx.heading(
                                        OnboardingState.step_title,
                                        size="6",
                                        as_="h1",
                                        id="step-title",
                                    ),
                                    rx.text(
                                        OnboardingState.step_blurb, color_scheme="gray", size="2"
                                    ),
                                    STEP_BODIES[step](),
                                    spacing="4",
                                    width="100%",
                                ),
                                rx.center(rx.spinner(size="3"), padding="4rem", width="100%"),
                            ),
                            size=rx.breakpoints(initial="2", sm="4"),
                            width="100%",
                        ),
                        spacing="5",
                        width="100%",
                        align="center",
                    ),
                    width="100%",
                    max_width="640px",
                    margin_x="auto",
                    padding_x="0.75rem",
                    padding_y="2rem",
                ),
                min_height="100vh",
                background="var(--gray-2)",
            )
        )

    page.__name__ = f"onboarding_{step.value}"
    return page
