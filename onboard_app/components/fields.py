"""Form pieces: a labelled field with its hint and inline error, tied to its control.

A field's label, hint and error carry ids derived from the field's name (``<name>-label``,
``<name>-hint``, ``<name>-error``); :func:`control_aria` gives the control the matching
``aria-invalid`` and ``aria-describedby``. An error is announced when it appears
(``role="alert"``), and after a refused submit :func:`focus_first_invalid` moves the focus
to the first invalid control.
"""

from __future__ import annotations

import json
from typing import Any

import reflex as rx
from reflex_base.event import EventSpec


def label_id(name: str) -> str:
    """The id of a field's label."""
    return f"{name}-label"


def hint_id(name: str) -> str:
    """The id of a field's hint."""
    return f"{name}-hint"


def error_id(name: str) -> str:
    """The id of a field's inline error."""
    return f"{name}-error"


def control_aria(name: str, error: rx.Var | str, *, hint: bool = False) -> dict[str, Any]:
    """``aria-invalid`` and ``aria-describedby`` (the hint, and the error while shown)."""
    hint_ref = f"{hint_id(name)} " if hint else ""
    return {
        "aria_invalid": rx.cond(error, "true", "false"),
        "aria_describedby": rx.cond(
            error, f"{hint_ref}{error_id(name)}", hint_id(name) if hint else None
        ),
    }


def field(
    name: str,
    label: str,
    control: rx.Component,
    error: rx.Var | str = "",
    *,
    hint: str = "",
    group: bool = False,
) -> rx.Component:
    """The label, the control, its hint and its inline error.

    Args:
        name: The field's name: the control's id, and the stem of the other ids.
        label: The visible label.
        control: The control, carrying :func:`control_aria` (and, for a group,
            ``aria-labelledby`` :func:`label_id`).
        error: The message shown under the control (none when empty).
        hint: One line under the control.
        group: Whether the control is a group (radios): its label names it by id
            instead of a ``<label for>``.
    """
    text = rx.text(label, as_="span", size="2", weight="medium")
    return rx.vstack(
        rx.box(text, id=label_id(name)) if group else rx.el.label(text, html_for=name),
        control,
        rx.text(hint, size="1", color="var(--gray-11)", id=hint_id(name))
        if hint
        else rx.fragment(),
        inline_error(name, error),
        spacing="2",
        width="100%",
    )


def inline_error(name: str, error: rx.Var | str) -> rx.Component:
    """A field's error, announced when it appears."""
    return rx.cond(
        error,
        rx.text(error, size="2", color="var(--red-11)", id=error_id(name), role="alert"),
    )


def form_error(message: rx.Var) -> rx.Component:
    """A red callout for a form-level error."""
    return rx.cond(
        message,
        rx.callout(message, icon="triangle-alert", color_scheme="red", role="alert", width="100%"),
    )


# After a submit, wait for the answer: the form is aria-busy while the server works (or, if
# that was too quick to be drawn, a second passes); then focus the first invalid control. A
# form that leaves the page (the step was saved) ends the wait.
_FOCUS_FIRST_INVALID = """
((form) => {
  if (!form) return;
  const started = performance.now();
  let busySeen = false, finished = false;
  const target = (el) => el.matches('input, textarea, button, [tabindex]') ? el
    : el.querySelector('[role=radio][aria-checked=true], [role=radio], button, input, textarea');
  const settle = () => {
    if (finished) return;
    if (!form.isConnected) { stop(); return; }
    if (form.getAttribute('aria-busy') === 'true') { busySeen = true; return; }
    if (!busySeen && performance.now() - started < 1000) return;
    stop();
    const invalid = form.querySelector('[aria-invalid=true]');
    if (invalid) target(invalid)?.focus();
  };
  const observer = new MutationObserver(settle);
  const timers = [setTimeout(settle, 1000), setTimeout(() => stop(), 15000)];
  const stop = () => { finished = true; observer.disconnect(); timers.forEach(clearTimeout); };
  observer.observe(form, {attributes: true, childList: true, subtree: true});
})(document.getElementById(FORM_ID))
"""


def focus_first_invalid(form_id: str) -> EventSpec:
    """Chained before a submit: once the answer is in, focus the form's first invalid control.

    The form must set ``aria-busy`` while its submit runs.
    """
    return rx.call_script(_FOCUS_FIRST_INVALID.replace("FORM_ID", json.dumps(form_id)))
