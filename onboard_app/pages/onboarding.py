"""``/onboarding/<step>``: the wizard pages, drawn from the step spec."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from onboard_app import routes
from onboard_app.components.answer_fields import step_fields
from onboard_app.components.fields import focus_first_invalid
from onboard_app.components.layout import (
    brand,
    dismiss_toasts,
    frame,
    loading,
    page_heading,
    session_watch,
    themed,
)
from onboard_app.components.prefetch import prefetch_page
from onboard_app.components.stepper import stepper
from onboard_app.services.onboarding import (
    Step,
    StepSpec,
    blurb_of,
    next_step,
    spec_of,
    steps,
    title_of,
    wizard_steps,
)
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.session import SessionState

STEP_FORM = "step-form"


def _header() -> rx.Component:
    return rx.el.header(
        rx.hstack(
            brand("5"),
            rx.spacer(),
            rx.button(
                "Log out",
                variant="soft",
                color_scheme="gray",
                type="button",
                on_click=[dismiss_toasts(), SessionState.log_out],
                id="wizard-logout",
            ),
            align="center",
            width="100%",
        ),
        width="100%",
    )


def _nav(primary: rx.Component, *, first: bool = False, optional: bool = False) -> rx.Component:
    """The footer: Back on the left, Skip and the step's action on the right, one size."""
    back = (
        []
        if first
        else [
            rx.button(
                rx.icon("arrow-left", size=16, aria_hidden="true"),
                "Back",
                variant="soft",
                color_scheme="gray",
                size="3",
                type="button",
                on_click=[dismiss_toasts(), OnboardingState.go_back],
                id="back",
            )
        ]
    )
    skip = (
        [
            rx.button(
                "Skip",
                variant="soft",
                color_scheme="gray",
                size="3",
                type="button",
                on_click=[dismiss_toasts(), OnboardingState.skip],
                disabled=OnboardingState.saving,
                id="skip",
            )
        ]
        if optional
        else []
    )
    return rx.hstack(
        *back,
        rx.spacer(),
        *skip,
        primary,
        align="center",
        spacing="3",
        width="100%",
        padding_top="var(--space-2)",
    )


def _busy_icon(icon: str) -> rx.Component:
    return rx.cond(
        OnboardingState.saving,
        rx.spinner(size="2"),
        rx.icon(icon, size=16, aria_hidden="true"),
    )


def _step_form(step: StepSpec, *, first: bool) -> rx.Component:
    next_button = rx.button(
        "Next",
        _busy_icon("arrow-right"),
        type="submit",
        size="3",
        disabled=OnboardingState.saving,
        id="next",
    )
    return rx.form(
        rx.vstack(
            step_fields(OnboardingState, step),
            _nav(next_button, first=first, optional=step.optional),
            spacing="6",
            width="100%",
        ),
        on_submit=lambda _form: [
            focus_first_invalid(STEP_FORM),
            dismiss_toasts(),
            OnboardingState.submit(),
        ],
        id=STEP_FORM,
        aria_busy=OnboardingState.saving,
        # Until the server has opened this page's step (its on_load runs a round trip
        # after the page shows), an answer would be refused as belonging to another
        # step: the form takes no input yet. It looks the same; it lasts one round trip.
        custom_attrs={"inert": OnboardingState.current_step != step.key},
        width="100%",
    )


def _summary_row(step: StepSpec) -> rx.Component:
    return rx.el.section(
        rx.hstack(
            rx.heading(step.title, as_="h2", size="2", weight="medium", color="var(--gray-11)"),
            rx.spacer(),
            rx.link(
                "Edit",
                rx.text.span(f" {step.title.lower()}", class_name="sr-only"),
                href=routes.onboarding(step.key),
                size="2",
                class_name="tap",
                on_click=dismiss_toasts(),
                id=f"edit-{step.key}",
            ),
            align="center",
            width="100%",
        ),
        rx.el.dl(
            *[
                rx.box(
                    rx.el.dt(item.label, color="var(--gray-11)"),
                    rx.el.dd(
                        OnboardingState.shown[item.name], id=f"review-{item.name}", margin="0"
                    ),
                    display="grid",
                    grid_template_columns=rx.breakpoints(initial="1fr", sm="11rem 1fr"),
                    column_gap="var(--space-3)",
                    font_size="var(--font-size-2)",
                    line_height="var(--line-height-2)",
                )
                for item in step.fields
            ],
            display="flex",
            flex_direction="column",
            gap="var(--space-2)",
            margin="0",
        ),
        display="flex",
        flex_direction="column",
        gap="var(--space-2)",
        width="100%",
        padding_y="var(--space-3)",
        border_bottom="1px solid var(--gray-4)",
    )


def review_body() -> rx.Component:
    """Summary of every answer of the spec with a link back to its step."""
    return rx.vstack(
        rx.box(*[_summary_row(step) for step in steps()], width="100%"),
        _nav(
            rx.button(
                "Finish",
                _busy_icon("check"),
                on_click=[dismiss_toasts(), OnboardingState.finish_onboarding],
                size="3",
                disabled=OnboardingState.saving,
                id="finish",
            )
        ),
        width="100%",
        spacing="5",
    )


def _body(step: Step) -> rx.Component:
    spec = spec_of(step)
    if spec is None:
        return review_body()
    return _step_form(spec, first=step == wizard_steps()[0])


def wizard_page(step: Step) -> Callable[[], rx.Component]:
    """The page function of one wizard step."""

    def page() -> rx.Component:
        return frame(
            themed(
                rx.box(
                    session_watch(),
                    # The code of the page Next (or Finish) opens is fetched while this one
                    # is read: the click does not wait for it.
                    prefetch_page(routes.onboarding(next_step(step))),
                    rx.vstack(
                        _header(),
                        rx.el.main(
                            rx.card(
                                rx.cond(
                                    OnboardingState.loaded,
                                    rx.vstack(
                                        stepper(step),
                                        rx.separator(size="4"),
                                        rx.vstack(
                                            page_heading(
                                                title_of(step), heading_id="step-title", size="6"
                                            ),
                                            rx.text(
                                                blurb_of(step), color="var(--gray-11)", size="2"
                                            ),
                                            spacing="1",
                                            width="100%",
                                        ),
                                        _body(step),
                                        spacing="5",
                                        width="100%",
                                    ),
                                    loading("4rem"),
                                ),
                                size=rx.breakpoints(initial="3", sm="4"),
                                width="100%",
                            ),
                            width="100%",
                        ),
                        spacing="4",
                        width="100%",
                        max_width="640px",
                        margin_x="auto",
                        padding_x="0.75rem",
                        padding_y=rx.breakpoints(initial="1rem", sm="2rem"),
                    ),
                    min_height="100vh",
                    background="var(--gray-2)",
                )
            )
        )

    page.__name__ = f"onboarding_{step}"
    return page
