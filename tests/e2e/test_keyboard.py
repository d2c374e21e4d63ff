"""Keyboard only: sign up and complete the wizard with Tab, Shift+Tab, Space, Enter and arrows.

No click and no ``fill``: every character is typed, every control reached with Tab and
worked with the keys a keyboard user has. The focus lands where the next key expects it.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from onboard_app.services.onboarding import title_of
from tests.e2e.conftest import PASSWORD, at, mail_to, new_email, stored_token, token_claims


def focused(page: Page) -> str:
    """The id of the focused element (empty for none)."""
    return page.evaluate("() => document.activeElement?.id || ''")


def tab_to(page: Page, element_id: str, *, key: str = "Tab", limit: int = 40) -> int:
    """Press Tab (or ``key``) until ``#element_id`` has the focus; how many presses it took."""
    for presses in range(limit):
        if focused(page) == element_id:
            return presses
        page.keyboard.press(key)
    raise AssertionError(f"{key} never reached #{element_id} (stopped at #{focused(page)})")


def step_open(page: Page, step: str) -> None:
    """On the wizard page of ``step`` (its heading focused), once its form takes input."""
    page.wait_for_url(at(f"/onboarding/{step}"))
    heading = page.locator("#step-title")
    expect(heading).to_have_text(title_of(step))  # the new page, not the one it replaces
    expect(heading).to_be_focused()
    page.wait_for_function("() => !document.getElementById('step-form').inert")


def test_sign_up_and_the_whole_wizard_by_keyboard(page: Page) -> None:
    email = new_email("keyboard")
    page.goto("/signup")
    tab_to(page, "email")
    page.keyboard.type(email)
    tab_to(page, "password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(at("/verify-email"))
    tab_to(page, "otp")
    page.keyboard.type(mail_to(email, "verify_email").code)
    page.keyboard.press("Enter")
    step_open(page, "profile")

    # Profile: from the focused heading, the first Tab reaches the first field.
    page.keyboard.press("Tab")
    expect(page.locator("#display_name")).to_be_focused()
    page.keyboard.type("Alan Turing")
    page.keyboard.press("Tab")
    expect(page.locator("#role")).to_be_focused()
    page.keyboard.press("Enter")  # opens the list on its first option
    expect(page.get_by_role("option", name="Software developer")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("option", name="Designer")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#role")).to_have_text("Designer")
    expect(page.locator("#role")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#bio")).to_be_focused()
    page.keyboard.type("Machines that think.")
    page.keyboard.press("Tab")
    expect(page.locator("#next")).to_be_focused()
    page.keyboard.press("Enter")
    step_open(page, "interests")

    # Interests: Space toggles a chip; Shift+Tab goes back to one already chosen.
    page.keyboard.press("Tab")
    expect(page.locator("#interests-python")).to_be_focused()
    page.keyboard.press("Space")
    assert tab_to(page, "interests-rust") == 2
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect(page.locator("#interests-go")).to_be_focused()
    page.keyboard.press("Space")
    tab_to(page, "interests-python", key="Shift+Tab")
    for topic in ("python", "rust", "go"):
        expect(page.locator(f"#interests-{topic}")).to_have_attribute("aria-pressed", "true")
    tab_to(page, "next")
    page.keyboard.press("Enter")
    step_open(page, "preferences")

    # Preferences: each radio group is one Tab stop; arrows move the choice, Space picks.
    # (Radix checks the radio an arrow moved to while the key is still down: held 80 ms,
    # as a finger does, not released in the same instant.)
    page.keyboard.press("Tab")
    expect(page.locator("#experience_level-beginner")).to_be_focused()
    page.keyboard.press("ArrowRight", delay=80)
    expect(page.locator("#experience_level-intermediate")).to_have_attribute("aria-checked", "true")
    page.keyboard.press("Tab")
    expect(page.locator("#email_digest-yes")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator("#email_digest-yes")).to_have_attribute("aria-checked", "true")
    page.keyboard.press("Tab")
    expect(page.locator("#theme-system")).to_be_focused()
    page.keyboard.press("ArrowDown", delay=80)
    expect(page.locator("#theme-light")).to_have_attribute("aria-checked", "true")
    page.keyboard.press("Tab")
    expect(page.locator("#back")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#next")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(at("/onboarding/review"))

    # Review: what the keys chose, then Finish.
    expect(page.locator("#step-title")).to_be_focused()
    expect(page.locator("#review-role")).to_have_text("Designer")
    expect(page.locator("#review-interests")).to_have_text("Python, Rust, Go")
    expect(page.locator("#review-experience_level")).to_have_text("Intermediate")
    expect(page.locator("#review-email_digest")).to_have_text("Yes, send it")
    expect(page.locator("#review-theme")).to_have_text("Light")
    tab_to(page, "finish")
    page.keyboard.press("Enter")
    page.wait_for_url(at("/explore"))
    expect(page.locator("#explore-title")).to_be_focused()
    assert token_claims(stored_token(page))["onb"] == "completed"
