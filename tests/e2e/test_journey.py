"""The whole journey a new user clicks through: signup, every step, Finish, explore."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    PASSWORD,
    ConsoleLog,
    at,
    log_in,
    new_email,
    sign_up,
    stored_token,
    token_claims,
)
from tests.e2e.wizard import (
    complete_interests,
    complete_preferences,
    complete_profile,
    reach_review,
)


def test_new_user_finishes_onboarding_without_logging_in_again(
    page: Page, console: ConsoleLog
) -> None:
    sign_up(page, new_email("journey"))
    first_token = stored_token(page)
    first = token_claims(first_token)
    assert first["onb"] == "profile"

    complete_profile(page)
    complete_interests(page)
    complete_preferences(page)
    expect(page.locator("#review-display_name")).to_have_text("Ada Lovelace")
    expect(page.locator("#review-interests")).to_contain_text("Security")
    before_finish = stored_token(page)
    assert token_claims(before_finish)["onb"] == "review"

    # Mark the document: a full page reload would lose this property.
    page.evaluate("() => { window.__no_reload_marker = 42 }")
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))
    expect(page.locator("#explore-title")).to_be_visible()
    assert page.evaluate("() => window.__no_reload_marker") == 42
    expect(page.locator("#email")).to_have_count(0)

    final = stored_token(page)
    claims = token_claims(final)
    assert final != before_finish
    assert claims["onb"] == "completed"
    assert claims["sub"] == first["sub"]
    assert claims["auth_time"] == first["auth_time"]
    assert claims["jti"] != token_claims(before_finish)["jti"]
    assert console == []


def test_wrong_step_by_url_goes_back_to_the_reached_step(page: Page) -> None:
    sign_up(page, new_email("jump"))
    page.goto("/onboarding/review")
    page.wait_for_url(at("/onboarding/profile"))
    page.goto("/explore")
    page.wait_for_url(at("/onboarding/profile"))


def test_reload_mid_wizard_loses_nothing_saved(page: Page) -> None:
    sign_up(page, new_email("reload"))
    complete_profile(page, "Katherine Johnson")
    page.locator("#interests-go").click()
    page.reload()
    page.wait_for_url(at("/onboarding/interests"))
    expect(page.locator("#step-title")).to_have_text("Your interests")
    page.goto("/onboarding/profile")
    expect(page.locator("#display_name")).to_have_value("Katherine Johnson")
    expect(page.locator("#bio")).to_have_value("I write programs for engines.")


def test_another_browser_resumes_at_the_same_step(page: Page, browser) -> None:
    email = new_email("device")
    sign_up(page, email)
    complete_profile(page, "Dorothy Vaughan")
    complete_interests(page)
    other = browser.new_context(base_url=page.url.split("/onboarding")[0])
    try:
        second = other.new_page()
        log_in(second, email, PASSWORD)
        second.wait_for_url(at("/onboarding/preferences"))
        second.goto("/onboarding/interests")
        for topic in ("python", "security", "databases"):
            expect(second.locator(f"#interests-{topic}")).to_have_attribute("aria-pressed", "true")
    finally:
        other.close()


def test_second_tab_shares_the_session(page: Page) -> None:
    sign_up(page, new_email("tabs"))
    second = page.context.new_page()
    second.goto("/explore")
    second.wait_for_url(at("/onboarding/profile"))
    expect(second.locator("#display_name")).to_be_visible()
    second.close()


def test_double_click_on_finish_gives_one_clean_transition(page: Page, console: ConsoleLog) -> None:
    sign_up(page, new_email("double"))
    reach_review(page)
    page.locator("#finish").dblclick()
    page.wait_for_url(at("/explore"))
    expect(page.locator("#explore-title")).to_be_visible()
    assert token_claims(stored_token(page))["onb"] == "completed"
    page.reload()
    page.wait_for_url(at("/explore"))
    assert console == []


def test_finish_in_one_tab_moves_the_other_on(page: Page) -> None:
    sign_up(page, new_email("twotabs"))
    reach_review(page)
    second = page.context.new_page()
    second.goto("/onboarding/review")
    expect(second.locator("#finish")).to_be_visible()
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))
    # The other tab still shows review; pressing Finish there is harmless.
    second.locator("#finish").click()
    second.wait_for_url(at("/explore"))
    assert token_claims(stored_token(second))["onb"] == "completed"
    second.close()
