"""One control for every kind of field of the step spec, shared by the wizard and settings.

A field picks its control by kind (text → input, long text → text area, single choice →
radio row, yes/no → two radios, multiple choice → chips); ``Field.control`` names another
one of :data:`CONTROLS` (``select`` for a long list of choices). A custom control is one
more entry here.
"""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from onboard_app.components.fields import control_aria, field, inline_error, label_id
from onboard_app.services.onboarding import Field, Kind, StepSpec
from onboard_app.state.onboarding import OnboardingState
from onboard_app.state.settings import SettingsState

Form = type[OnboardingState] | type[SettingsState]


def _error(form: Form, spec: Field) -> rx.Var | str:
    return form.errors.get(spec.name, "")


def _text_control(form: Form, spec: Field) -> rx.Component:
    control = rx.text_area if spec.kind is Kind.LONG_TEXT else rx.input
    extra = {"rows": "3", "resize": "vertical"} if spec.kind is Kind.LONG_TEXT else {}
    return field(
        spec.name,
        spec.label,
        control(
            value=form.values[spec.name],
            on_change=lambda value: form.set_field(spec.name, value),
            id=spec.name,
            placeholder=spec.placeholder,
            width="100%",
            max_length=spec.max_chars,
            size="3",
            **control_aria(spec.name, _error(form, spec), hint=bool(spec.hint)),
            **extra,
        ),
        _error(form, spec),
        hint=spec.hint,
    )


def _select(form: Form, spec: Field) -> rx.Component:
    return field(
        spec.name,
        spec.label,
        rx.select.root(
            rx.select.trigger(
                placeholder=f"Choose your {spec.label.lower()}",
                width="100%",
                id=spec.name,
                **control_aria(spec.name, _error(form, spec), hint=bool(spec.hint)),
            ),
            rx.select.content(
                *[rx.select.item(label, value=value) for value, label in spec.options.items()]
            ),
            value=form.values[spec.name],
            on_change=lambda value: form.set_field(spec.name, value),
            size="3",
        ),
        _error(form, spec),
        hint=spec.hint,
    )


def _radios(form: Form, spec: Field) -> rx.Component:
    options = (
        dict(zip(("yes", "no"), spec.yes_no_labels, strict=True))
        if spec.kind is Kind.YES_NO
        else dict(spec.options)
    )
    return field(
        spec.name,
        spec.label,
        rx.radio_group.root(
            rx.flex(
                *[
                    rx.el.label(
                        rx.radio_group.item(value=key, id=f"{spec.name}-{key}"),
                        rx.text(label, as_="span", size="3"),
                        html_for=f"{spec.name}-{key}",
                        class_name="choice",
                        gap="var(--space-2)",
                        padding_right="var(--space-2)",
                    )
                    for key, label in options.items()
                ],
                column_gap="var(--space-4)",
                row_gap="var(--space-1)",
                wrap="wrap",
            ),
            value=form.values[spec.name],
            on_change=lambda value: form.set_field(spec.name, value),
            size="3",
            aria_labelledby=label_id(spec.name),
            **control_aria(spec.name, _error(form, spec), hint=bool(spec.hint)),
        ),
        _error(form, spec),
        hint=spec.hint,
        group=True,
    )


def _chip(form: Form, spec: Field, value: str, label: str) -> rx.Component:
    selected = form.selections[spec.name].contains(value)
    return rx.button(
        rx.cond(
            selected,
            rx.icon("check", size=14, aria_hidden="true"),
            rx.icon("plus", size=14, aria_hidden="true"),
        ),
        label,
        on_click=form.toggle_choice(spec.name, value),
        variant=rx.cond(selected, "solid", "outline"),
        radius="full",
        size="2",
        type="button",
        aria_pressed=rx.cond(selected, "true", "false"),
        id=f"{spec.name}-{value}",
    )


def _chips(form: Form, spec: Field) -> rx.Component:
    count_id = f"{spec.name}-count"
    return rx.vstack(
        rx.flex(
            *[_chip(form, spec, value, label) for value, label in spec.options.items()],
            wrap="wrap",
            spacing="2",
            role="group",
            aria_label=spec.label,
            aria_invalid=rx.cond(_error(form, spec), "true", "false"),
            aria_describedby=rx.cond(_error(form, spec), f"{count_id} {spec.name}-error", count_id),
            id=spec.name,
        ),
        rx.text(
            form.selections[spec.name].length(),
            " selected",
            size="2",
            color="var(--gray-11)",
            id=count_id,
        ),
        inline_error(spec.name, _error(form, spec)),
        spacing="3",
        width="100%",
    )


#: Control name -> how it draws a field.
CONTROLS: dict[str, Callable[[Form, Field], rx.Component]] = {
    "input": _text_control,
    "select": _select,
    "radios": _radios,
    "chips": _chips,
}
_DEFAULT_CONTROL = {
    Kind.TEXT: "input",
    Kind.LONG_TEXT: "input",
    Kind.SINGLE_CHOICE: "radios",
    Kind.YES_NO: "radios",
    Kind.MULTIPLE_CHOICE: "chips",
}


def field_control(form: Form, spec: Field) -> rx.Component:
    """The control of one field."""
    return CONTROLS[spec.control or _DEFAULT_CONTROL[spec.kind]](form, spec)


def step_fields(form: Form, step: StepSpec) -> rx.Component:
    """Every field of a step, in order (the avatar from the sign-in provider first)."""
    return rx.vstack(
        *(
            [
                rx.cond(
                    form.avatar_url,
                    rx.hstack(
                        rx.avatar(
                            src=form.avatar_url,
                            fallback="?",
                            size="4",
                            radius="full",
                            aria_hidden="true",
                        ),
                        rx.text(
                            "Your avatar comes from your sign-in provider.",
                            size="2",
                            color="var(--gray-11)",
                        ),
                        align="center",
                    ),
                )
            ]
            if any(f.name == "display_name" for f in step.fields)
            else []
        ),
        *[field_control(form, spec) for spec in step.fields],
        spacing="5",
        width="100%",
    )
