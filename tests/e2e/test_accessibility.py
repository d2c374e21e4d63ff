"""Accessibility in Chromium: axe-core on every page, at phone and desktop width, light and dark.

One walk through the app (sign-in pages, each wizard step with and without errors, review,
explore with its filters and user menu open, settings) audits every view of every page with
axe-core (``.tools/node_modules/axe-core``, installed by ``make test``) and measures what axe
does not: one ``h1`` and one ``<main>``, ``aria-current`` only on the current step, 44 px
touch targets on a phone, and a focus ring of at least 2 px at 3:1 on every Tab stop. The
other tests follow the focus after Next, Back, Finish and refused submits, and read how each
error is tied to its field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import pyotp
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.conftest import PASSWORD, ROOT, RunningApp, at, log_in, new_email, sign_up
from tests.e2e.passkeys import VirtualAuthenticator
from tests.e2e.wizard import complete_interests, complete_preferences, complete_profile

AXE_SCRIPT = ROOT / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
Scheme = Literal["light", "dark"]
VIEWS: tuple[tuple[ViewportSize, Scheme], ...] = (
    (PHONE, "light"),
    (PHONE, "dark"),
    (DESKTOP, "light"),
    (DESKTOP, "dark"),
)
#: Every page the walk audits, in states worth auditing (errors shown, menus open).
AUDITED = (
    "/login",
    "/signup",
    "/forgot-password",
    "/reset-password",
    "/verify-email",
    "profile",
    "profile, refused",
    "interests",
    "interests, refused",
    "preferences",
    "preferences, refused",
    "review",
    "explore",
    "explore, filters open",
    "explore, user menu open",
    "settings",
    "settings, refused",
    "settings, passkey password refused",
    "settings, passkey listed",
    "settings, passkey rename",
    "settings, account forms refused",
    "settings, email change pending",
    "/confirm-email",
    "/account-deleted",
    "settings, two-factor setup",
    "settings, two-factor recovery codes",
    "/login, two-factor code",
)

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.flatMap(v => v.nodes.map(
    n => `${v.id} (${v.impact}) at ${n.target.join(' ')}: ${v.help}`));
}"""

# Landmarks, headings and the stepper's aria-current, as the page is now.
STRUCTURE = """() => ({
  h1: document.querySelectorAll('h1').length,
  main: document.querySelectorAll('main, [role=main]').length,
  current: [...document.querySelectorAll('[aria-current]')]
    .map(e => e.getAttribute('aria-current')),
})"""

# Every visible control smaller than 44 x 44 CSS px. A control's target is its own box, or
# its label's (a radio). Links inside a sentence are exempt (WCAG 2.5.5 and 2.5.8: inline).
SMALL_TARGETS = """() => {
  const controls = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), textarea, select, summary, [role=radio],' +
    ' [role=combobox], [tabindex]:not([tabindex="-1"])');
  const small = [];
  for (const el of controls) {
    if (el.closest('[aria-hidden=true], [data-sonner-toaster]')) continue;
    const box = (el.closest('label, .rt-TextFieldRoot, .rt-TextAreaRoot') || el)
      .getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (el.matches('a') && el.closest('p') && el.parentElement.childNodes.length > 1) continue;
    if (box.width < 43.5 || box.height < 43.5) {
      small.push(`${el.id || el.textContent.trim().slice(0, 30) || el.tagName}:` +
                 ` ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  return small;
}"""

# The focus indicator of the active element: an outline (on it, its ::before, or the text
# field around it) of at least 2 px whose colour stands 3:1 against what is behind it.
FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const canvas = document.createElement('canvas').getContext('2d', {willReadFrequently: true});
  const rgba = (css) => {
    canvas.clearRect(0, 0, 1, 1); canvas.fillStyle = '#0000'; canvas.fillStyle = css;
    canvas.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = canvas.getImageData(0, 0, 1, 1).data; return [r, g, b, a / 255];
  };
  const behind = (node) => {
    const layers = [];
    for (let n = node; n; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let out = [255, 255, 255];
    for (const [r, g, b, a] of layers.reverse()) {
      out = [r * a + out[0] * (1 - a), g * a + out[1] * (1 - a), b * a + out[2] * (1 - a)];
    }
    return out;
  };
  const lum = ([r, g, b]) => [r, g, b].map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const candidates = [[el, null], [el, '::before'],
    [el.closest('.rt-TextFieldRoot, .rt-TextAreaRoot') || el, null]];
  for (const [node, pseudo] of candidates) {
    const style = getComputedStyle(node, pseudo);
    const width = parseFloat(style.outlineWidth);
    if (style.outlineStyle === 'none' || !(width >= 2)) continue;
    const ring = rgba(style.outlineColor);
    const ground = behind(node.parentElement || node);
    const [hi, lo] = [lum(ring), lum(ground)].sort((a, b) => b - a);
    return {name: el.id || el.textContent.trim().slice(0, 30) || el.tagName,
            width, contrast: (hi + 0.05) / (lo + 0.05)};
  }
  return {name: el.id || el.textContent.trim().slice(0, 30) || el.tagName, width: 0, contrast: 0};
}"""


# No transition or animation is running (spinners, which never end, aside).
SETTLED = """() => document.getAnimations().every(
  a => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity)"""


@dataclass
class Findings:
    """What was wrong with the views of the app, by view (page, state, width, theme)."""

    axe: dict[str, list[str]] = field(default_factory=dict)
    structure: dict[str, dict[str, object]] = field(default_factory=dict)
    small_targets: dict[str, list[str]] = field(default_factory=dict)
    weak_focus: dict[str, list[str]] = field(default_factory=dict)
    tab_stops: dict[str, int] = field(default_factory=dict)


def run_axe(page: Page) -> list[str]:
    """axe-core's violations on the page as it is (any impact), one line per element."""
    if not page.evaluate("() => 'axe' in window"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    return page.evaluate(AXE_RUN)


def weak_focus_rings(page: Page, limit: int = 120) -> tuple[int, list[str]]:
    """Tab through the page from the top: the stops whose focus ring is missing or faint."""
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    page.mouse.click(1, 1)  # the document, not a control: Tab then starts at the top
    page.evaluate(
        "() => document.querySelectorAll('[data-tab-stop]')"
        ".forEach(e => e.removeAttribute('data-tab-stop'))"
    )
    weak: list[str] = []
    stops = 0
    for _ in range(limit):
        page.keyboard.press("Tab")
        ring = page.evaluate(FOCUS_RING)
        # Back at a stop already seen (or out of the page): the walk is complete.
        if ring is None or page.evaluate(
            "() => { const e = document.activeElement; const seen = e.dataset.tabStop;"
            " e.dataset.tabStop = '1'; return !!seen; }"
        ):
            break
        stops += 1
        if ring["width"] < 2 or ring["contrast"] < 3:
            weak.append(f"{ring['name']}: {ring['width']}px at {ring['contrast']:.2f}:1")
    return stops, weak


class Auditor:
    """Audits views of the page it drives, at every width and theme."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.findings = Findings()

    def view(
        self, name: str, *, focus: bool = True, prepare: Callable[[], None] | None = None
    ) -> None:
        """Audit the page now shown, as ``name``, in every width and theme."""
        for viewport, scheme in VIEWS:
            self.page.set_viewport_size(viewport)
            self.page.emulate_media(color_scheme=scheme)
            if prepare is not None:
                prepare()
            self.page.wait_for_timeout(150)  # the theme change repaints
            # A toast sliding in or fading out has, for that moment, a lower contrast.
            self.page.wait_for_function(SETTLED)
            key = f"{name} @{viewport['width']} {scheme}"
            self.findings.axe[key] = run_axe(self.page)
            self.findings.structure[key] = self.page.evaluate(STRUCTURE)
            if viewport is PHONE:
                self.findings.small_targets[key] = self.page.evaluate(SMALL_TARGETS)
            if focus and viewport is DESKTOP:
                stops, weak = weak_focus_rings(self.page)
                self.findings.tab_stops[key] = stops
                self.findings.weak_focus[key] = weak
        self.page.set_viewport_size(DESKTOP)
        self.page.emulate_media(color_scheme="light")


def audit_account_forms(page: Page, audit: Auditor) -> None:
    """The account sections of settings with their errors shown, then an email change waiting."""
    page.locator("#new-email").fill(new_email("a11y-new"))
    page.locator("#email-password").fill("not the password")
    page.locator("#change-email").click()
    expect(page.locator("#email-password-error")).to_be_visible()
    page.locator("#new-password").fill("password123")
    page.locator("#change-password").click()
    expect(page.locator("#new-password-error")).to_be_visible()
    page.locator("#delete-account").click()
    expect(page.locator("#delete-confirm-error")).to_be_visible()
    audit.view("settings, account forms refused", focus=False)
    page.locator("#email-password").fill(PASSWORD)
    page.locator("#change-email").click()
    expect(page.locator("#email-pending")).to_be_visible()
    audit.view("settings, email change pending")
    page.locator("#cancel-email-change").click()
    expect(page.locator("#new-email")).to_be_visible()


def audit_two_factor(page: Page, audit: Auditor, email: str) -> None:
    """Turn two-factor on (each step audited), log out, and audit the login's code step."""
    page.locator("#two-factor-set-up").click()
    page.locator("#two-factor-password").fill(PASSWORD)
    page.locator("#two-factor-continue").click()
    expect(page.locator("#two-factor-qr")).to_be_visible()
    audit.view("settings, two-factor setup")
    secret = page.locator("#two-factor-secret").inner_text().replace(" ", "")
    page.locator("#two-factor-code").fill(pyotp.TOTP(secret).now())
    page.locator("#two-factor-confirm").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    audit.view("settings, two-factor recovery codes")
    page.locator("#two-factor-codes-saved").click()
    page.locator("#two-factor-done").click()
    expect(page.locator("#two-factor-status")).to_contain_text("On.")
    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name="Log out").click()
    page.wait_for_url(at("/login"))
    log_in(page, email)
    expect(page.locator("#two-factor-code")).to_be_visible()
    audit.view("/login, two-factor code")


def audit_passkeys(page: Page, audit: Auditor) -> None:
    """The Passkeys section: its password asked (and refused), a passkey listed, renaming it."""
    authenticator = VirtualAuthenticator(page)
    page.locator("#add-passkey").click()
    page.locator("#passkey-password").fill("not the password")
    page.locator("#confirm-passkey-password").click()
    expect(page.locator("#passkey-password-error")).to_be_visible()
    audit.view("settings, passkey password refused", focus=False)
    page.locator("#passkey-password").fill(PASSWORD)
    page.locator("#confirm-passkey-password").click()
    expect(page.locator("li.passkey")).to_have_count(1)
    audit.view("settings, passkey listed")
    page.locator("li.passkey").get_by_role("button", name=re.compile("^Rename ")).click()
    expect(page.locator("#passkey-name")).to_be_focused()
    audit.view("settings, passkey rename", focus=False)
    page.locator("#rename-passkey").get_by_role("button", name="Cancel").click()
    expect(page.locator("#passkey-name")).to_have_count(0)
    authenticator.cdp.detach()


@pytest.fixture(scope="module")
def findings(browser: Browser, app_server: RunningApp) -> Iterator[Findings]:
    """One walk through every page of the app, audited view by view."""
    context = browser.new_context(base_url=app_server.url, viewport=DESKTOP, bypass_csp=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    audit = Auditor(page)
    try:
        for path, ready in (
            ("/login", "#email"),
            ("/signup", "#email"),
            ("/forgot-password", "h1"),
            ("/reset-password", "h1"),
            ("/verify-email", "h1"),
            ("/confirm-email", "[role=alert]"),
            ("/account-deleted", "h1"),
        ):
            page.goto(path)
            page.locator(ready).first.wait_for()
            audit.view(path)

        email = new_email("a11y")
        sign_up(page, email)
        expect(page.locator("#display_name")).to_be_visible()
        audit.view("profile")
        page.locator("#next").click()
        expect(page.locator("#display_name-error")).to_be_visible()
        audit.view("profile, refused", focus=False)
        complete_profile(page)
        audit.view("interests")
        page.locator("#next").click()
        expect(page.locator("#interests-error")).to_be_visible()
        audit.view("interests, refused", focus=False)
        complete_interests(page)
        audit.view("preferences")
        page.locator("#next").click()
        expect(page.locator("#experience_level-error")).to_be_visible()
        audit.view("preferences, refused", focus=False)
        complete_preferences(page, theme="system")
        audit.view("review")
        page.locator("#finish").click()
        page.wait_for_url(at("/explore"))
        expect(page.locator("#results")).to_be_visible()
        audit.view("explore")

        def open_filters() -> None:
            page.evaluate("() => { document.querySelector('.filters').open = true; }")

        audit.view("explore, filters open", focus=False, prepare=open_filters)

        def open_menu() -> None:
            if not page.locator("#account-email").is_visible():
                page.locator("#user-menu").click()
            expect(page.locator("#account-email")).to_be_visible()

        audit.view("explore, user menu open", focus=False, prepare=open_menu)
        page.keyboard.press("Escape")
        page.goto("/settings")
        expect(page.locator("#save-profile")).to_be_visible()
        audit.view("settings")
        page.locator("#display_name").fill("")
        page.locator("#save-profile").click()
        expect(page.locator("#display_name-error")).to_be_visible()
        audit.view("settings, refused", focus=False)
        audit_passkeys(page, audit)
        audit_account_forms(page, audit)
        audit_two_factor(page, audit, email)
        yield audit.findings
    finally:
        context.close()


def _failing(by_view: dict[str, list[str]]) -> dict[str, list[str]]:
    return {view: problems for view, problems in by_view.items() if problems}


def _audited(by_view: Mapping[str, object]) -> list[str]:
    return sorted({view.split(" @")[0] for view in by_view})


def test_axe_finds_no_violation_on_any_page(findings: Findings) -> None:
    assert _audited(findings.axe) == sorted(AUDITED)
    assert len(findings.axe) == len(AUDITED) * len(VIEWS)
    failing = _failing(findings.axe)
    assert not failing, json.dumps(failing, indent=1)


def test_every_page_has_one_h1_and_one_main_landmark(findings: Findings) -> None:
    wrong = {
        view: found
        for view, found in findings.structure.items()
        if (found["h1"], found["main"]) != (1, 1)
    }
    assert not wrong, wrong


def test_aria_current_marks_the_current_step_only(findings: Findings) -> None:
    for view, found in findings.structure.items():
        on_wizard = view.startswith(("profile", "interests", "preferences", "review"))
        assert found["current"] == (["step"] if on_wizard else []), view


def test_touch_targets_are_44px_on_a_phone(findings: Findings) -> None:
    assert len(findings.small_targets) == len(AUDITED) * 2
    failing = _failing(findings.small_targets)
    assert not failing, json.dumps(failing, indent=1)


def test_every_tab_stop_has_a_visible_focus_ring(findings: Findings) -> None:
    # Tabbing reached the controls of each page (explore: navbar, search, filters, cards).
    assert findings.tab_stops["explore @1440 light"] >= 30, findings.tab_stops
    assert all(stops >= 2 for stops in findings.tab_stops.values()), findings.tab_stops
    failing = _failing(findings.weak_focus)
    assert not failing, json.dumps(failing, indent=1)


# --- focus after navigation and after a refused submit ----------------------------------


def test_focus_moves_to_the_new_steps_heading_after_next_back_and_finish(page: Page) -> None:
    sign_up(page, new_email("focus"))
    complete_profile(page)
    heading = page.locator("#step-title")
    expect(heading).to_be_focused()
    expect(heading).to_have_text("Your interests")
    page.locator("#back").click()
    page.wait_for_url(at("/onboarding/profile"))
    expect(heading).to_have_text("Your profile")
    expect(heading).to_be_focused()
    page.locator("#next").click()
    page.wait_for_url(at("/onboarding/interests"))
    expect(heading).to_be_focused()
    complete_interests(page)
    expect(heading).to_have_text("Preferences")
    expect(heading).to_be_focused()
    complete_preferences(page)
    expect(heading).to_have_text("Review")
    expect(heading).to_be_focused()
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))
    expect(page.locator("#explore-title")).to_be_focused()
    # Tab goes on from the heading: the next stop is the first control after it.
    page.keyboard.press("Tab")
    expect(page.locator("#edit-interests")).to_be_focused()


def _tied_error(page: Page, control: str, name: str, message: str) -> None:
    """The control is invalid and described by its error, which is announced."""
    expect(page.locator(control)).to_have_attribute("aria-invalid", "true")
    described = (page.locator(control).get_attribute("aria-describedby") or "").split()
    assert f"{name}-error" in described
    error = page.locator(f"#{name}-error")
    expect(error).to_contain_text(message)
    expect(error).to_have_attribute("role", "alert")


def test_a_refused_step_focuses_its_first_invalid_field_and_ties_each_error(page: Page) -> None:
    sign_up(page, new_email("errors"))
    expect(page.locator("#display_name")).to_have_attribute("aria-invalid", "false")
    page.locator("#next").click()
    expect(page.locator("#display_name")).to_be_focused()
    _tied_error(page, "#display_name", "display_name", "Tell us what to call you.")
    _tied_error(page, "#role", "role", "Pick the role that fits you best.")
    expect(page.locator("#bio")).to_have_attribute("aria-describedby", "bio-hint")

    # Fixed the first: the next refusal focuses the one still wrong.
    page.locator("#display_name").fill("Grace Hopper")
    page.keyboard.press("Enter")
    expect(page.locator("#role")).to_be_focused()
    expect(page.locator("#display_name")).to_have_attribute("aria-invalid", "false")
    expect(page.locator("#display_name-error")).to_have_count(0)

    page.locator("#role").click()
    page.get_by_role("option", name="Designer").click()
    page.locator("#next").click()
    page.wait_for_url(at("/onboarding/interests"))
    page.locator("#next").click()
    expect(page.locator("#interests-python")).to_be_focused()
    _tied_error(page, "#interests", "interests", "Pick at least 3 topics")
    expect(page.get_by_role("group", name="Topics")).to_be_visible()

    complete_interests(page)
    page.locator("#next").click()
    expect(page.locator("#experience_level-beginner")).to_be_focused()
    for name, message in (
        ("experience_level", "Pick your experience level."),
        ("email_digest", "Choose whether you want the weekly digest."),
        ("theme", "Pick a theme."),
    ):
        _tied_error(page, f"[role=radiogroup][aria-labelledby={name}-label]", name, message)
    for label in ("Experience level", "Weekly email digest", "Theme"):
        expect(page.get_by_role("radiogroup", name=label)).to_be_visible()


def test_a_refused_settings_section_focuses_its_first_invalid_field(page: Page) -> None:
    sign_up(page, new_email("settings-errors"))
    complete_profile(page)
    complete_interests(page)
    complete_preferences(page)
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))
    page.goto("/settings")
    for topic in ("python", "security"):
        page.locator(f"#interests-{topic}").click()
    page.locator("#save-interests").click()
    expect(page.locator("#interests-python")).to_be_focused()
    _tied_error(page, "#interests", "interests", "Pick at least 3 topics")


def test_the_stepper_names_finished_steps_on_a_phone(page: Page) -> None:
    page.set_viewport_size(PHONE)
    sign_up(page, new_email("stepper"))
    complete_profile(page)
    complete_interests(page)
    nav = page.get_by_role("navigation", name="Onboarding progress")
    for done in ("Your profile (done)", "Your interests (done)"):
        expect(nav.get_by_role("link", name=done)).to_be_visible()
    expect(nav.get_by_role("link")).to_have_count(2)
    current = nav.locator("[aria-current]")
    expect(current).to_have_count(1)
    expect(current).to_have_attribute("aria-current", "step")
    expect(current).to_contain_text("Preferences")
    expect(nav.locator("#step-counter")).to_have_text("Step 3 of 4")
