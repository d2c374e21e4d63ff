"""The look of a product, measured in Chromium at 390 px (phone) and 1440 px (desktop).

The first explore result above the fold on a phone, filters behind one control; wizard
footers whose buttons line up; fields of one size and inset; toasts that stay on their
page; one grid for the navbar and the content; the account in the user menu; no sentence
said twice on a page.
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import FloatRect, Page, ViewportSize, expect

from onboard_app.services.onboarding import steps
from tests.e2e.conftest import at, mail_to, new_email, sign_up
from tests.e2e.wizard import complete_interests, complete_preferences, complete_profile

PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1440, "height": 900}


def finish_onboarding(page: Page, name: str = "Ada Lovelace") -> None:
    complete_profile(page, name)
    complete_interests(page)
    complete_preferences(page)
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))
    expect(page.locator("#results")).to_be_visible()


def box(page: Page, selector: str, timeout: float = 15.0) -> FloatRect:
    """The box of the first match, once it is shown.

    A page still drawing (its state arriving after the URL changed) may replace the element
    between two looks, so this asks again until a box comes back or ``timeout`` passes.
    """
    element = page.locator(selector).first
    deadline = time.monotonic() + timeout
    while True:
        element.wait_for(state="visible", timeout=timeout * 1000)
        found = element.bounding_box()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"{selector} is not shown"
        page.wait_for_timeout(100)


def test_on_a_phone_the_first_result_is_above_the_fold_and_filters_fold(page: Page) -> None:
    page.set_viewport_size(PHONE)
    sign_up(page, new_email("fold"))
    finish_onboarding(page)
    page.evaluate("() => window.scrollTo(0, 0)")
    first = box(page, "#results .explore-card")
    assert first["y"] + first["height"] <= PHONE["height"], first
    expect(page.locator("#chip-python")).to_be_hidden()

    page.locator("#filters-toggle").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#chip-python")).to_be_visible()
    page.locator("#chip-python").click()
    expect(page.locator("#filters-toggle")).to_contain_text("1")  # filters in use: how many
    expect(page.locator("#chip-python")).to_have_attribute("aria-pressed", "true")

    page.set_viewport_size(DESKTOP)
    expect(page.locator("#filters-toggle")).to_be_hidden()
    page.locator("#filters-toggle").evaluate("summary => { summary.parentElement.open = false }")
    expect(page.locator("#chip-go")).to_be_visible()  # above a phone, always open


def _aligned(page: Page, *selectors: str) -> None:
    boxes = [box(page, selector) for selector in selectors]
    heights = {round(b["height"]) for b in boxes}
    middles = {round(b["y"] + b["height"] / 2) for b in boxes}
    assert len(heights) == 1 and len(middles) == 1, dict(zip(selectors, boxes, strict=True))


def test_the_wizard_footer_buttons_line_up(page: Page) -> None:
    sign_up(page, new_email("footer"))
    complete_profile(page)
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        _aligned(page, "#back", "#next")
    complete_interests(page)
    complete_preferences(page)
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        _aligned(page, "#back", "#finish")
        card = box(page, "main .rt-Card")
        finish = box(page, "#finish")
        back = box(page, "#back")
        # Back on the left edge of the content, Finish on its right edge, the same inset.
        left_inset = back["x"] - card["x"]
        right_inset = card["x"] + card["width"] - (finish["x"] + finish["width"])
        assert abs(left_inset - right_inset) <= 1, (left_inset, right_inset)


# Where a field's box starts and where its text starts, its height and its font size.
FIELD_GEOMETRY = """(id) => {
  const el = document.getElementById(id);
  const frame = el.closest('.rt-TextFieldRoot, .rt-TextAreaRoot') || el;
  const box = frame.getBoundingClientRect();
  const inner = el.querySelector('.rt-SelectTriggerInner');
  const style = getComputedStyle(el);
  const text = inner ? inner.getBoundingClientRect().left
    : el.getBoundingClientRect().left + parseFloat(style.paddingLeft)
      + parseFloat(style.borderLeftWidth) + (parseFloat(style.textIndent) || 0);
  return {left: box.left, width: box.width, inset: text - box.left, height: box.height,
          font: style.fontSize};
}"""


def test_fields_share_one_size_and_inset(page: Page) -> None:
    sign_up(page, new_email("fields"))
    expect(page.locator("#bio")).to_be_visible()
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        name, role, bio = (
            page.evaluate(FIELD_GEOMETRY, field) for field in ("display_name", "role", "bio")
        )
        for other in (role, bio):
            for key in ("left", "width", "inset"):
                assert abs(other[key] - name[key]) <= 1, (key, name, role, bio)
            assert other["font"] == name["font"], (name, role, bio)
        assert name["height"] == role["height"], (name, role)


def test_toasts_stay_on_the_page_that_raised_them(page: Page) -> None:
    email = new_email("toasts")
    sign_up(page, email)
    toasts = page.locator("[data-sonner-toast]")
    # Raised with a navigation: shown on the page it leads to. (The mailed link, its code
    # spent already, sends the confirmed session on with a word about it.)
    page.goto(mail_to(email, "verify_email").link)
    page.wait_for_url(at("/onboarding/profile"))
    expect(toasts.filter(has_text="confirmed already")).to_be_visible()
    finish_onboarding(page)
    # Finish says it on explore itself, once; the wizard's toast did not follow.
    expect(page.locator("#all-set")).to_have_text("You're all set. Welcome to Onboard!")
    expect(toasts).to_have_count(0)

    page.locator("#edit-interests").click()
    page.wait_for_url(at("/settings"))
    expect(toasts).to_have_count(0)
    page.locator("#save-profile").click()
    expect(toasts.filter(has_text="Your profile saved.")).to_be_visible()
    page.get_by_role("link", name="Back to explore").click()
    page.wait_for_url(at("/explore"))
    expect(toasts).to_have_count(0)
    expect(page.locator("#results")).to_be_visible()
    expect(page.locator("#all-set")).to_have_count(0)

    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name="Settings").click()
    page.wait_for_url(at("/settings"))
    page.locator("#save-preferences").click()
    expect(toasts.filter(has_text="Preferences saved.")).to_be_visible()
    page.go_back()  # the browser's own Back
    page.wait_for_url(at("/explore"))
    expect(toasts).to_have_count(0)


def test_the_navbar_and_the_content_share_one_grid(page: Page) -> None:
    sign_up(page, new_email("grid"))
    finish_onboarding(page)
    for path, heading, content in (
        ("/explore", "#explore-title", "main .rt-TextFieldRoot"),
        ("/settings", "#settings-title", "main .rt-Card"),
    ):
        page.goto(path)
        expect(page.locator(heading)).to_be_visible()
        for viewport in (PHONE, DESKTOP):
            page.set_viewport_size(viewport)
            brand = box(page, "header a")
            assert abs(box(page, heading)["x"] - brand["x"]) <= 1, (path, viewport)
            assert abs(box(page, content)["x"] - brand["x"]) <= 1, (path, viewport)
            if path == "/explore":
                menu, search = box(page, "#user-menu"), box(page, "main .rt-TextFieldRoot")
                right = search["x"] + search["width"]
                assert abs(menu["x"] + menu["width"] - right) <= 1, (menu, search)


def test_settings_jump_list_reaches_every_section(page: Page) -> None:
    sign_up(page, new_email("jumps"))
    finish_onboarding(page)
    page.goto("/settings")
    jumps = page.get_by_role("navigation", name="Settings sections").get_by_role("link")
    expect(page.locator("#delete-title")).to_be_visible()  # the last section is drawn
    targets = [href.lstrip("#") for href in jumps.evaluate_all("(a) => a.map(l => l.hash)")]
    assert len(targets) == len(steps()) + 6
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        header = box(page, "header")
        for name, target in (("Passkeys", "passkeys-title"), ("Devices", "devices-title")):
            page.evaluate("() => window.scrollTo(0, 0)")
            jumps.filter(has_text=name).click()
            expect(page).to_have_url(re.compile(rf"/settings/?#{target}$"))
            heading = page.locator(f"#{target}")
            expect(heading).to_be_in_viewport()
            # It stops below the sticky header, not under it.
            shown = heading.bounding_box()
            assert shown is not None and shown["y"] >= header["y"] + header["height"], name
    for target in targets:  # every link names a heading of the page
        expect(page.locator(f"h2#{target}")).to_have_count(1)


def test_the_user_menu_shows_the_account(page: Page) -> None:
    email = new_email("account")
    sign_up(page, email)
    finish_onboarding(page, "Barbara Liskov")
    expect(page.locator("#user-menu")).to_contain_text("Barbara Liskov")
    page.locator("#user-menu").click()
    expect(page.locator("#account-name")).to_have_text("Barbara Liskov")
    expect(page.locator("#account-email")).to_have_text(email)
    page.keyboard.press("Escape")
    expect(page.locator("#account-email")).to_be_hidden()


# Visible sentences (three words or more) said more than once on the page.
REPEATED_SENTENCES = """() => {
  const seen = new Map();
  for (const el of document.querySelectorAll('main *')) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent)
      .join('').trim().replace(/\\s+/g, ' ');
    const box = el.getBoundingClientRect();
    if (own.split(' ').length < 3 || box.width <= 1 || box.height <= 1) continue;
    if (el.closest('#results')) continue;  // catalogue data, one reason line per card
    const key = own.toLowerCase();
    seen.set(key, (seen.get(key) || 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([text]) => text);
}"""


def test_each_page_says_things_once(page: Page) -> None:
    sign_up(page, new_email("copy"))
    pages = []
    for step in (complete_profile, complete_interests, complete_preferences):
        pages.append((page.url, page.evaluate(REPEATED_SENTENCES)))
        step(page)
    pages.append((page.url, page.evaluate(REPEATED_SENTENCES)))
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))
    for path in ("/explore", "/settings"):
        page.goto(path)
        page.locator("main h1").wait_for()
        page.wait_for_timeout(300)
        pages.append((path, page.evaluate(REPEATED_SENTENCES)))
    assert all(not repeated for _, repeated in pages), pages
    # A section's Save button does not repeat the section's title: its heading names it.
    page.goto("/settings")
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(len(steps()))
