"""Form pieces: a labelled field with its inline error."""

from __future__ import annotations

import reflex as rx


def field(
    label: str,
    control: rx.Component,
    error: rx.Var | str = "",
    *,
    hint: rx.Component | str | None = None,
    html_for: str | None = None,
) -> rx.Component:
    """A label, the control, an optional hint and the inline error under it."""
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=html_for),
        control,
        rx.cond(
            error,
            rx.text(error, color_scheme="red", size="2", role="alert"),
            rx.cond(hint is not None, rx.text(hint or "", color_scheme="gray", size="1")),
        ),
        spacing="1",
        width="100%",
    )


def form_error(message: rx.Var) -> rx.Component:
    """A red callout for a form-level error."""
    return rx.cond(
        message,
        rx.callout(message, icon="triangle-alert", color_scheme="red", role="alert", width="100%"),
    )
