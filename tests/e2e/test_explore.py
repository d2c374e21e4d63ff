"""Explore and settings in the browser: personalised ranking, search, chips, edits."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import at, new_email, sign_up
from tests.e2e.wizard import complete_interests, complete_preferences, complete_profile


def finish_onboarding(page: Page, topics: tuple[str, ...]) -> None:
    sign_up(page, new_email("explore"))
    complete_profile(page, "Mary Shaw")
    complete_interests(page, topics)
    complete_preferences(page)
    page.locator("#finish").click()
    page.wait_for_url(at("/explore"))
    expect(page.locator("#results")).to_be_visible()


def reasons(page: Page) -> list[str]:
    return page.locator("#results .reason").all_inner_texts()


def test_onboarding_interests_come_first(page: Page) -> None:
    finish_onboarding(page, ("rust", "go", "databases"))
    expect(page.locator("#welcome")).to_contain_text("Rust, Go, Databases")
    cards = page.locator("#results .explore-card")
    expect(cards.first).to_be_visible()
    # Every card on the first page matches at least one interest, and says which.
    count = cards.count()
    assert count == 12
    texts = reasons(page)
    assert len(texts) == count
    assert all(re.search(r"Rust|Go|Databases", t) for t in texts), texts

    # Best matches first: the first card matches at least as many interests as the last.
    def matched(text: str) -> int:
        return sum(topic in text for topic in ("Rust", "Go", "Databases"))

    assert matched(texts[0]) >= matched(texts[-1])


def test_search_filters_and_empty_state(page: Page) -> None:
    finish_onboarding(page, ("python", "security", "testing"))
    page.locator("#search").fill("pytest")
    expect(page.locator("#results .explore-card").first).to_contain_text("pytest")
    expect(page.locator("#range")).to_contain_text("of ")
    page.locator("#search").fill("no such thing anywhere 123")
    expect(page.locator("#empty-state")).to_be_visible()
    page.locator("#clear-filters").click()
    expect(page.locator("#search")).to_have_value("")
    expect(page.locator("#results")).to_be_visible()

    page.locator("#chip-mobile").click()
    expect(page.locator("#chip-mobile")).to_have_attribute("aria-pressed", "true")
    first_page = page.locator("#results .explore-card")
    expect(first_page.first).to_contain_text("Mobile")
    for i in range(first_page.count()):
        expect(first_page.nth(i)).to_contain_text("Mobile")


def test_pagination_moves_through_the_catalogue(page: Page) -> None:
    finish_onboarding(page, ("web", "frontend", "design"))
    first_titles = page.locator("#results .explore-card h2").all_inner_texts()
    page.locator("#next-page").click()
    expect(page.locator("#range")).to_contain_text("13–24")
    second_titles = page.locator("#results .explore-card h2").all_inner_texts()
    assert not set(first_titles) & set(second_titles)
    page.locator("#previous-page").click()
    expect(page.locator("#range")).to_contain_text("1–12")


def test_settings_change_shows_on_explore(page: Page) -> None:
    finish_onboarding(page, ("rust", "go", "databases"))
    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name="Settings").click()
    page.wait_for_url(at("/settings"))
    for topic in ("rust", "go", "databases"):
        page.locator(f"#interests-{topic}").click()
    for topic in ("mobile", "design", "career"):
        page.locator(f"#interests-{topic}").click()
    page.locator("#save-interests").click()
    expect(page.get_by_text("Your interests saved.")).to_be_visible()
    page.locator("#display_name").fill("Mary S.")
    page.locator("#save-profile").click()
    expect(page.locator("#user-menu")).to_contain_text("Mary S.")

    page.goto("/explore")
    expect(page.locator("#welcome")).to_contain_text("Mobile, Design & UX, Career & learning")
    texts = reasons(page)
    assert texts and all(re.search(r"Mobile|Design|Career", t) for t in texts), texts


def test_settings_validation_matches_the_wizard(page: Page) -> None:
    finish_onboarding(page, ("python", "go", "rust"))
    page.goto("/settings")
    page.locator("#interests-go").click()
    page.locator("#interests-rust").click()
    page.locator("#save-interests").click()
    expect(page.get_by_text("Pick at least 3 topics (2 more).")).to_be_visible()
    page.goto("/explore")
    expect(page.locator("#welcome")).to_contain_text("Python, Rust, Go")


def test_theme_preference_applies(page: Page) -> None:
    finish_onboarding(page, ("python", "go", "rust"))
    page.goto("/settings")
    page.locator("#theme-dark").click()
    page.locator("#save-preferences").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    page.locator("#theme-light").click()
    page.locator("#save-preferences").click()
    expect(page.locator("html")).not_to_have_class(re.compile(r"\bdark\b"))
