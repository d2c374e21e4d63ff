"""Browser steps through the wizard, shared by the e2e tests."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import at


def complete_profile(page: Page, name: str = "Ada Lovelace") -> None:
    page.locator("#display_name").fill(name)
    page.locator("#role").click()
    page.get_by_role("option", name="Software developer").click()
    page.locator("#bio").fill("I write programs for engines.")
    page.locator("#next").click()
    page.wait_for_url(at("/onboarding/interests"))


def complete_interests(
    page: Page, topics: tuple[str, ...] = ("python", "security", "databases")
) -> None:
    for topic in topics:
        page.locator(f"#interests-{topic}").click()
        expect(page.locator(f"#interests-{topic}")).to_have_attribute("aria-pressed", "true")
    page.locator("#next").click()
    page.wait_for_url(at("/onboarding/preferences"))


def complete_preferences(page: Page, theme: str = "light") -> None:
    page.locator("#experience_level-intermediate").click()
    page.locator("#email_digest-no").click()
    page.locator(f"#theme-{theme}").click()
    page.locator("#next").click()
    page.wait_for_url(at("/onboarding/review"))


def reach_review(page: Page) -> None:
    complete_profile(page)
    complete_interests(page)
    complete_preferences(page)
