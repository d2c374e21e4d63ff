"""The wizard's progress indicator: an ordered list of the steps, drawn for one page.

Each wizard page draws it for its own step, so it never shows another step while the
page's answers load. Steps before it are links (every step before the open one may be
reopened), the open one is ``aria-current="step"``, the ones after it are plain text. On a
phone only the numbers show; the labels stay for screen readers.
"""

from __future__ import annotations

import reflex as rx

from onboard_app import routes
from onboard_app.components.layout import dismiss_toasts
from onboard_app.services.onboarding import Step, step_index, title_of, wizard_steps


def _badge(number: int, *, done: bool, reached: bool) -> rx.Component:
    return rx.center(
        rx.icon("check", size=14, aria_hidden="true")
        if done
        else rx.text(str(number), as_="span", size="1", weight="bold"),
        width="28px",
        height="28px",
        border_radius="50%",
        background="var(--accent-9)" if reached else "var(--gray-4)",
        color="var(--accent-contrast)" if reached else "var(--gray-11)",
        flex_shrink="0",
        aria_hidden="true",
    )


def _label(text: str, *, current: bool, done: bool) -> rx.Component:
    return rx.text(
        text,
        rx.text.span(" (done)", class_name="sr-only") if done else rx.fragment(),
        as_="span",
        size="2",
        weight="bold" if current else "regular",
        color="var(--gray-12)" if current else "var(--gray-11)",
        class_name="phone-sr-only",
        white_space="nowrap",
    )


def _item(step: Step, here: int, *, last: bool) -> rx.Component:
    position = step_index(step)
    done, current = position < here, position == here
    content = rx.hstack(
        _badge(position + 1, done=done, reached=done or current),
        _label(title_of(step), current=current, done=done),
        align="center",
        justify="center",
        spacing="2",
        width="100%",
    )
    if done:
        entry = rx.link(
            content,
            href=routes.onboarding(step),
            underline="none",
            color="inherit",
            class_name="tap",
            on_click=dismiss_toasts(),
            id=f"stepper-{step}",
        )
    elif current:
        entry = rx.box(content, aria_current="step", class_name="tap")
    else:
        entry = rx.box(content, class_name="tap")
    connector = rx.box(
        flex="1", height="2px", background="var(--gray-5)", min_width="12px", aria_hidden="true"
    )
    return rx.el.li(
        entry,
        *([] if last else [connector]),
        display="flex",
        align_items="center",
        gap="var(--space-2)",
        flex="0 0 auto" if last else "1 1 auto",
    )


def stepper(current: Step) -> rx.Component:
    """The steps of the wizard with ``current`` highlighted."""
    order = wizard_steps()
    here = step_index(current)
    return rx.el.nav(
        rx.text(
            f"Step {here + 1} of {len(order)}", as_="span", class_name="sr-only", id="step-counter"
        ),
        rx.el.ol(
            *[_item(step, here, last=index == len(order) - 1) for index, step in enumerate(order)],
            display="flex",
            align_items="center",
            gap="var(--space-2)",
            list_style="none",
            margin="0",
            padding="0",
            width="100%",
        ),
        aria_label="Onboarding progress",
        width="100%",
    )
