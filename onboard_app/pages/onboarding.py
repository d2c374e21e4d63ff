"""``/onboarding/<step>``: the wizard pages, drawn from the step spec."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from onboard_app import routes
from onboard_app.components.answer_fields import step_fields
from onboard_app.components.layout import brand, session_watch, themed
from onboard_app.components.stepper import stepper
from onboard_app.services.onboarding import Step, StepSpec, spec_of, steps, wizard_steps
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState


def _nav(primary: rx.Component, *, first: bool = False, optional: bool = False) -> rx.Component:
    skip = (
        [
            rx.button(
                "Skip",
                variant="soft",
                color_scheme="gray",
                type="button",
                on_click=OnboardingState.skip,
                disabled=OnboardingState.saving,
                id="skip",
            )
        ]
        if optional
        else []
    )
    return rx.hstack(
        rx.button(
            "Log out",
            variant="ghost",
            color_scheme="gray",
            type="button",
            on_click=SessionState.log_out,
            id="wizard-logout",
        )
        if first
        else rx.button(
            rx.icon("arrow-left", size=16),
            "Back",
            variant="soft",
            color_scheme="gray",
            type="button",
            on_click=OnboardingState.go_back,
            id="back",
        ),
        rx.spacer(),
        *skip,
        primary,
        width="100%",
        padding_top="0.5rem",
    )


def _step_form(step: StepSpec, *, first: bool) -> rx.Component:
    next_button = rx.button(
        "Next",
        rx.cond(OnboardingState.saving, rx.spinner(size="2"), rx.icon("arrow-right", size=16)),
        type="submit",
        size="3",
        disabled=OnboardingState.saving,
        id="next",
    )
    return rx.form(
        rx.vstack(
            step_fields(OnboardingState, step),
            _nav(next_button, first=first, optional=step.optional),
            spacing="5",
            width="100%",
        ),
        on_submit=lambda _form: OnboardingState.submit(),
        width="100%",
    )


def _summary_row(step: StepSpec) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text(step.title, size="1", color_scheme="gray", weight="medium"),
            *[
                rx.text(
                    rx.text.span(f"{item.label}: ", color_scheme="gray"),
                    rx.text.span(OnboardingState.shown[item.name], id=f"review-{item.name}"),
                    size="2",
                )
                for item in step.fields
            ],
            spacing="1",
        ),
        rx.spacer(),
        rx.link("Edit", href=routes.onboarding(step.key), size="2", id=f"edit-{step.key}"),
        width="100%",
        align="start",
        padding_y="0.75rem",
        border_bottom="1px solid var(--gray-4)",
    )


def review_body() -> rx.Component:
    """Summary of every answer of the spec with a link back to its step."""
    return rx.vstack(
        *[_summary_row(step) for step in steps()],
        _nav(
            rx.button(
                "Finish",
                rx.cond(OnboardingState.saving, rx.spinner(size="2"), rx.icon("check", size=16)),
                on_click=OnboardingState.finish_onboarding,
                size="3",
                disabled=OnboardingState.saving,
                id="finish",
            )
        ),
        width="100%",
        spacing="0",
    )


def _body(step: Step) -> rx.Component:
    spec = spec_of(step)
    if spec is None:
        return review_body()
    return _step_form(spec, first=step == wizard_steps()[0])


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
                                    _body(step),
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

    page.__name__ = f"onboarding_{step}"
    return page
