"""The few app-wide rules the theme does not give: focus ring, touch targets, toasts, filters.

Drawn once per page by the page frames (:mod:`onboard_app.components.layout`), as a
``<style>`` element (the Content-Security-Policy allows inline styles, not scripts).
"""

from __future__ import annotations

import reflex as rx

#: Below this width the app is laid out for a phone (Radix Themes' ``sm`` breakpoint).
PHONE_MAX = "767px"

PAGE_CSS = f"""
/* Focus ring: 2px outside the control, in the theme accent's step 11 (it stands at least
   4.5:1 against steps 1-2, the page and card backgrounds, in light and dark). Radix draws
   soft and outline buttons' rings in step 8 inside the button, which is too faint. */
:root .radix-themes {{ --onboard-focus: var(--accent-11); }}
:root .radix-themes, :root .radix-themes [data-accent-color] {{
  --focus-8: var(--onboard-focus);
}}
.rt-BaseButton:focus-visible, a:focus-visible, summary:focus-visible {{
  outline: 2px solid var(--onboard-focus);
  outline-offset: 2px;
}}
[data-sonner-toast]:focus-visible {{ outline: 2px solid var(--gray-12); outline-offset: 2px; }}
/* Headings take the focus after a navigation (tabindex=-1); they are not controls. */
h1[tabindex="-1"]:focus {{ outline: none; }}

/* Links inside running text are underlined, not told apart by colour alone. */
p .rt-Link {{ text-decoration-line: underline; }}

/* Visually hidden, still read by screen readers. */
.sr-only {{
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}}

/* One size and inset for every field: the select's text starts where the input's does. */
.rt-SelectTrigger.rt-r-size-3 {{ padding-inline: var(--space-3); }}

/* A radio's whole label is its target. */
.choice {{ display: inline-flex; align-items: center; min-height: 32px; cursor: pointer; }}

/* Toasts in the theme's colours: text of step 11 on gray 1 (>= 4.5:1, light and dark), the
   colour's step 7 as the border. The toaster sits outside .radix-themes: only the colour
   scales (defined on :root, .light and .dark) reach it. */
[data-sonner-toaster][data-sonner-theme] {{
  --success-bg: var(--gray-1); --success-border: var(--green-7); --success-text: var(--green-11);
  --error-bg: var(--gray-1); --error-border: var(--red-7); --error-text: var(--red-11);
  --info-bg: var(--gray-1); --info-border: var(--blue-7); --info-text: var(--blue-11);
  --warning-bg: var(--gray-1); --warning-border: var(--amber-7); --warning-text: var(--amber-11);
}}

/* Explore's topic filters: behind one "Filters" control on a phone, always open above. */
.filters > summary {{ list-style: none; }}
.filters > summary::-webkit-details-marker {{ display: none; }}
@media (min-width: 768px) {{
  @supports selector(::details-content) {{
    .filters > summary {{ display: none; }}
    .filters::details-content {{ content-visibility: visible; display: contents; }}
  }}
}}

/* Phone: every target at least 44 x 44 CSS px. */
@media (max-width: {PHONE_MAX}) {{
  .rt-Button, .rt-IconButton, .rt-SelectTrigger, .rt-TextFieldRoot, .rt-BaseMenuItem,
  .rt-SelectItem, .choice, .tap, :not(p) > .rt-Link {{ min-height: 44px; }}
  .rt-Button, .rt-IconButton, .tap, :not(p) > .rt-Link {{ min-width: 44px; }}
  .tap, :not(p) > .rt-Link {{ display: inline-flex; align-items: center; }}
  .phone-sr-only {{
    position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
    clip: rect(0 0 0 0); white-space: nowrap; border: 0;
  }}
}}
"""


def page_style() -> rx.Component:
    """The app-wide rules above, as one ``<style>`` element."""
    return rx.el.style(PAGE_CSS)
