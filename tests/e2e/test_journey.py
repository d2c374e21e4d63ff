"""The whole journey a new user clicks through: signup, every step, Finish, explore."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import ConsoleLog, new_email, sign_up, stored_token, token_claims


def complete_profile(page: Page, name: str = "Ada Lovelace") -> None:
    page.locator("#display_name").fill(name)
    page.locator("#role").click()
    page.get_by_role("option", name="Software developer").click()
    page.locator("#bio").fill("I write programs for engines.")
    page.locator("#next").click()
    page.wait_for_url("**/onboarding/interests")


def complete_interests(page: Page, topics: tuple[str, ...] = ("python", "security", "databases")) -> None:
    for topic in topics:
        page.locator(f"#topic-{topic}").click()
        expect(page.locator(f"#topic-{topic}")).to_have_attribute("aria-pressed", "true")
    page.locator("#next").click()
    page.wait_for_url("**/onboarding/preferences")


def complete_preferences(page: Page) -> None:
    page.locator("#level-intermediate").click()
    page.locator("#digest-no").click()
    page.locator("#theme-light").click()
    page.locator("#next").click()
    page.wait_for_url("**/onboarding/review")


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
    expect(page.locator("#review-name")).to_have_text("Ada Lovelace")
    expect(page.locator("#review-interests")).to_contain_text("Security")
    before_finish = stored_token(page)
    assert token_claims(before_finish)["onb"] == "review"

    # Mark the document: a full page reload would lose this property.
    page.evaluate("() => { window.__no_reload_marker = 42 }")
    page.locator("#finish").click()
    page.wait_for_url("**/explore")
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
    page.wait_for_url("**/onboarding/profile")
    page.goto("/explore")
    page.wait_for_url("**/onboarding/profile")
