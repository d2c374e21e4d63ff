"""The insights page in Chromium: what an admin sees and downloads, and who is turned away.

The app runs with ``ONBOARD_ADMIN_EMAILS`` naming one address; people are put in its
database through the repository (their wizard steps, opened, saved and finished, write the
events as the app does), then sign in through the login page.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from onboard_app.services.db import dispose_engine, get_engine
from onboard_app.services.onboarding import REVIEW
from onboard_app.services.passwords import hash_password
from onboard_app.services.users import (
    complete_onboarding,
    create_local_user,
    record_step_opened,
    save_step,
)
from tests.e2e.conftest import PASSWORD, RunningApp, at, log_in, start_app, stop_app
from tests.e2e.test_accessibility import DESKTOP, PHONE, Auditor
from tests.unit.flow_steps import GOOD

ADMIN = "insights-admin@example.com"
MEMBER = "insights-member@example.com"


def person(url: str, email: str, password_hash: str, upto: str = REVIEW) -> None:
    """A confirmed password account, through the wizard up to ``upto`` (review: finished)."""
    user = create_local_user(email, password_hash, url)
    assert user.id is not None
    with get_engine(url).begin() as connection:
        connection.execute(
            sa.text("UPDATE users SET email_verified_at = :now WHERE id = :id"),
            {"now": datetime.now(UTC).replace(tzinfo=None), "id": user.id},
        )
    for step, answers in GOOD.items():
        record_step_opened(user.id, step, url)
        if step == upto:
            return
        save_step(user.id, step, answers, url=url)
    record_step_opened(user.id, REVIEW, url)
    assert complete_onboarding(user.id, url).transitioned


@pytest.fixture(scope="module")
def insights_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    app = start_app(
        tmp_path_factory.mktemp("insights-app"), web_name="insights", ONBOARD_ADMIN_EMAILS=ADMIN
    )
    try:
        password_hash = hash_password(PASSWORD)
        person(app.database_url, ADMIN, password_hash)
        person(app.database_url, MEMBER, password_hash)
        person(app.database_url, "stuck-early@example.com", password_hash, upto="interests")
        person(app.database_url, "=stuck-late@example.com", password_hash, upto="preferences")
        dispose_engine(app.database_url)
        yield app
    finally:
        stop_app(app)


@pytest.fixture
def insights_page(browser: Browser, insights_app: RunningApp) -> Iterator[Page]:
    context = browser.new_context(
        base_url=insights_app.url, viewport=DESKTOP, accept_downloads=True
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def open_insights(page: Page) -> None:
    log_in(page, ADMIN)
    page.wait_for_url(at("/explore"))
    page.goto("/admin/onboarding")
    expect(page.locator("#funnel-table")).to_be_visible()


def downloaded(page: Page, button: str) -> tuple[str, list[list[str]]]:
    with page.expect_download() as info:
        page.locator(button).click()
    download = info.value
    text = Path(download.path()).read_text(encoding="utf-8")
    return download.suggested_filename, list(csv.reader(io.StringIO(text)))


def test_an_admin_sees_the_funnel_the_chart_and_the_stuck_list(insights_page: Page) -> None:
    page = insights_page
    open_insights(page)
    expect(page.locator("h1")).to_have_text("Onboarding insights")
    rows = page.locator("#funnel-table tbody tr")
    expect(rows).to_have_count(4)
    cells = [r.split("\t") for r in rows.all_inner_texts()]
    assert [c[:3] for c in cells] == [
        ["Your profile", "4", "4"],
        ["Your interests", "4", "3"],
        ["Preferences", "3", "2"],
        ["Review", "2", "2"],
    ]
    assert cells[1][3] == "25.0 %"
    expect(page.locator("#completions-chart svg.recharts-surface")).to_be_visible()
    expect(page.locator("#completions-chart figcaption")).to_contain_text("2 completions on 20")
    expect(page.locator("#stuck-none")).to_be_visible()  # nobody for more than 7 days

    page.locator("#stuck-days").fill("0")
    stuck = page.locator("#stuck-table tbody tr")
    expect(stuck).to_have_count(2)
    expect(page.locator("#stuck-range")).to_have_text("1–2 of 2")
    page.locator("#sort-step").click()
    header = page.locator("th", has=page.locator("#sort-step"))
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(stuck.first).to_contain_text("Your interests")
    page.locator("#sort-step").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(stuck.first).to_contain_text("Preferences")

    page.locator("#method").click()
    page.get_by_role("option", name="GitHub").click()
    expect(page.locator("#stuck-none")).to_be_visible()
    reached = rows.first.locator("td").first
    expect(reached).to_have_text("0")
    page.locator("#clear-filters").click()
    expect(reached).to_have_text("4")


def test_the_funnel_and_the_stuck_list_download_as_csv(insights_page: Page) -> None:
    page = insights_page
    open_insights(page)
    name, funnel = downloaded(page, "#export-funnel")
    assert name.startswith("onboarding-funnel-") and name.endswith(".csv")
    assert funnel[0][:5] == ["step", "title", "reached", "finished", "drop_off_percent"]
    assert [row[:4] for row in funnel[1:]] == [
        ["profile", "Your profile", "4", "4"],
        ["interests", "Your interests", "4", "3"],
        ["preferences", "Preferences", "3", "2"],
        ["review", "Review", "2", "2"],
    ]
    page.locator("#stuck-days").fill("0")
    expect(page.locator("#stuck-table tbody tr")).to_have_count(2)
    name, stuck = downloaded(page, "#export-stuck")
    assert name.startswith("onboarding-stuck-")
    emails = sorted(row[1] for row in stuck[1:])
    # A cell that would start a spreadsheet formula is quoted.
    assert emails == ["'=stuck-late@example.com", "stuck-early@example.com"]


def test_a_member_is_sent_away_and_sees_nothing(insights_page: Page) -> None:
    page = insights_page
    log_in(page, MEMBER)
    page.wait_for_url(at("/explore"))
    page.goto("/admin/onboarding")
    page.wait_for_url(at("/explore"))
    expect(page.locator("#funnel-table")).to_have_count(0)
    expect(page.locator("#stuck-table")).to_have_count(0)
    # What the member sees (the HTML's compiled state names every var of every page).
    assert "Stuck for more than" not in page.locator("body").inner_text()


def test_the_page_is_accessible_on_a_phone_and_a_desktop_in_light_and_dark(
    browser: Browser, insights_app: RunningApp
) -> None:
    # axe-core is injected as a script: this context lets it past the page's CSP.
    context = browser.new_context(base_url=insights_app.url, viewport=DESKTOP, bypass_csp=True)
    context.set_default_timeout(20_000)
    try:
        audit_insights(context.new_page())
    finally:
        context.close()


def audit_insights(page: Page) -> None:
    open_insights(page)
    page.locator("#stuck-days").fill("0")
    expect(page.locator("#stuck-table tbody tr")).to_have_count(2)
    audit = Auditor(page)
    audit.view("insights")
    found = audit.findings
    assert {v: p for v, p in found.axe.items() if p} == {}, json.dumps(found.axe, indent=1)
    assert all((s["h1"], s["main"]) == (1, 1) for s in found.structure.values()), found.structure
    assert {v: p for v, p in found.small_targets.items() if p} == {}
    assert {v: p for v, p in found.weak_focus.items() if p} == {}
    # On a phone the tables scroll inside their card; the page itself does not scroll sideways.
    page.set_viewport_size(PHONE)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
