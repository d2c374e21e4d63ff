"""Page access: decide() for anonymous, onboarding and completed visitors on every route."""

from __future__ import annotations

import pytest

from onboard_app.services import access
from onboard_app.services.access import decide, home_for, page_rule, permits, step_open
from onboard_app.services.onboarding import COMPLETED, REVIEW, Step, StepSpec, wizard_steps

P, IN, PR, R, C = "profile", "interests", "preferences", REVIEW, COMPLETED
WIZARD_STEPS = (P, IN, PR, R)
WIZARD_PAGES = [f"/onboarding/{s}" for s in WIZARD_STEPS]
CALLBACKS = ["/auth/callback/github", "/auth/callback/oidc"]
UNKNOWN = [
    "/nope",
    "/admin",
    "/onboarding",
    "/onboarding/completed",
    "/onboarding/bogus",
    "/onboarding/profile/extra",
    "/EXPLORE",
    "/explore/x",
    "/login/x",
]


def test_home_for() -> None:
    assert [home_for(s) for s in (P, IN, PR, R, C)] == [*WIZARD_PAGES, "/explore"]


# --- anonymous ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/signup", "/login/", "/signup//"])
def test_anonymous_may_see_guest_pages(path: str) -> None:
    assert decide(path, None) is None
    assert decide(path, None, "/explore") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/login"),
        ("", "/login"),
        ("/explore", "/login?next=/explore"),
        ("/explore/", "/login?next=/explore"),
        ("/settings", "/login?next=/settings"),
        *[(page, f"/login?next={page}") for page in WIZARD_PAGES],
        *[(page + "/", f"/login?next={page}") for page in WIZARD_PAGES],
        *[(page, "/login") for page in UNKNOWN],
    ],
)
def test_anonymous_sent_to_login(path: str, expected: str) -> None:
    assert decide(path, None) == expected


@pytest.mark.parametrize("reached", [None, P, IN, PR, R, C])
@pytest.mark.parametrize("path", [*CALLBACKS, *(p + "/" for p in CALLBACKS)])
def test_callback_pages_never_redirect(path: str, reached: Step | None) -> None:
    assert decide(path, reached) is None


# --- onboarding users -----------------------------------------------------------------------


@pytest.mark.parametrize("reached", [P, IN, PR, R])
def test_onboarding_user_on_every_page(reached: Step) -> None:
    home = f"/onboarding/{reached}"
    assert decide("/", reached) == home
    assert decide("/login", reached) == home
    assert decide("/signup", reached) == home
    assert decide("/explore", reached) == home
    assert decide("/settings", reached) == home
    assert decide("/settings/", reached) == home
    for page in UNKNOWN:
        assert decide(page, reached) == home, page
    for step in WIZARD_STEPS:
        page = f"/onboarding/{step}"
        expected = None if WIZARD_STEPS.index(step) <= WIZARD_STEPS.index(reached) else home
        assert decide(page, reached) == expected, page
        assert decide(page + "/", reached) == expected, page


def test_direct_url_to_a_later_step_is_sent_back() -> None:
    assert decide("/onboarding/review", P) == "/onboarding/profile"
    assert decide("/onboarding/preferences", IN) == "/onboarding/interests"
    assert decide("/explore", R) == "/onboarding/review"


# --- completed users ------------------------------------------------------------------------


def test_completed_user_on_every_page() -> None:
    assert decide("/", C) == "/explore"
    assert decide("/login", C) == "/explore"
    assert decide("/signup", C) == "/explore"
    assert decide("/explore", C) is None
    assert decide("/explore/", C) is None
    assert decide("/settings", C) is None
    for page in [*WIZARD_PAGES, *UNKNOWN]:
        assert decide(page, C) == "/explore", page


# --- next= ----------------------------------------------------------------------------------


@pytest.mark.parametrize("guest_page", ["/login", "/signup"])
def test_next_followed_when_allowed_for_the_user(guest_page: str) -> None:
    assert decide(guest_page, C, "/settings") == "/settings"
    assert decide(guest_page, C, "/explore") == "/explore"
    assert decide(guest_page, IN, "/onboarding/profile") == "/onboarding/profile"
    assert decide(guest_page, R, "/onboarding/interests") == "/onboarding/interests"


@pytest.mark.parametrize("guest_page", ["/login", "/signup"])
def test_next_not_followed_beyond_what_the_user_may_see(guest_page: str) -> None:
    assert decide(guest_page, IN, "/explore") == "/onboarding/interests"
    assert decide(guest_page, IN, "/settings") == "/onboarding/interests"
    assert decide(guest_page, P, "/onboarding/review") == "/onboarding/profile"
    assert decide(guest_page, C, "/onboarding/profile") == "/explore"


@pytest.mark.parametrize(
    "next_param",
    [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "/%2f%2fevil.example",
        "javascript:alert(1)",
        "/explore\r\nX: y",
        "/explore?x=1",
        "/login",
        "/",
        "/auth/callback/github",
        None,
        5,
        ["/explore"],
    ],
    ids=repr,
)
@pytest.mark.parametrize("reached", [IN, C])
def test_bad_next_falls_back_home(next_param: object, reached: Step) -> None:
    assert decide("/login", reached, next_param) == home_for(reached)


def test_next_ignored_on_non_guest_pages() -> None:
    assert decide("/", C, "/settings") == "/explore"
    assert decide("/explore", C, "/settings") is None
    assert decide("/explore", IN, "/onboarding/profile") == "/onboarding/interests"


# --- handler rules: permits() ---------------------------------------------------------------


def test_the_wizard_steps_are_the_ones_checked_here() -> None:
    assert wizard_steps() == WIZARD_STEPS


@pytest.mark.parametrize("reached", [None, P, IN, PR, R, C])
def test_fixed_rules(reached: Step | None) -> None:
    signed_in = reached is not None
    assert permits(access.ANYONE, reached) is True
    assert permits(access.NOBODY, reached) is False
    assert permits(access.SIGNED_IN, reached) is signed_in
    assert permits(access.ONBOARDING, reached) is (signed_in and reached != C)
    assert permits(access.COMPLETED, reached) is (reached == C)


#: reached -> the open steps the OPEN_STEP rule lets through
OPEN_STEP_ALLOWS = {P: {P}, IN: {P, IN}, PR: {P, IN, PR}, R: {P, IN, PR, R}, C: set()}


@pytest.mark.parametrize("open_step", [None, P, IN, PR, R, C, "bogus", ""])
@pytest.mark.parametrize("reached", [None, P, IN, PR, R, C])
def test_open_step_rule(reached: Step | None, open_step: Step | None) -> None:
    allowed = reached is not None and open_step in OPEN_STEP_ALLOWS[reached]
    assert permits(access.OPEN_STEP, reached, open_step) is allowed


@pytest.mark.parametrize("open_step", [P, R, "bogus"])
def test_rules_other_than_open_step_ignore_the_open_step(open_step: Step) -> None:
    assert permits(access.ONBOARDING, P, open_step) is True
    assert permits(access.COMPLETED, C, open_step) is True
    assert permits(step_open(P), IN, open_step) is True
    assert permits(step_open(PR), IN, open_step) is False


@pytest.mark.parametrize("reached", [P, IN, PR, R, C])
@pytest.mark.parametrize("step", WIZARD_STEPS)
def test_step_open_rule(step: Step, reached: Step) -> None:
    rule = step_open(step)
    assert rule.name == f"step {step} open"
    expected = reached != C and WIZARD_STEPS.index(step) <= WIZARD_STEPS.index(reached)
    assert permits(rule, reached) is expected
    assert permits(rule, None) is False


# --- a step added through the spec alone ----------------------------------------------------


def test_a_step_added_through_the_spec_gets_a_page_rule(flow_v2: StepSpec) -> None:
    page = "/onboarding/workplace"
    assert page_rule(page) == step_open("workplace")
    assert decide(page, "workplace") is None
    assert decide(page, R) is None
    assert decide(page, PR) == "/onboarding/preferences"
    assert decide(page, C) == "/explore"
    assert decide(page, None) == f"/login?next={page}"
    assert decide("/onboarding/review", "workplace") == page
    assert decide("/explore", "workplace") == page
    assert permits(access.OPEN_STEP, "workplace", "workplace") is True
    assert permits(access.OPEN_STEP, "workplace", R) is False


def test_a_step_not_in_the_deployed_spec_has_no_page() -> None:
    assert page_rule("/onboarding/workplace") is access.NOBODY
    assert decide("/onboarding/workplace", IN) == "/onboarding/interests"


# --- a verified email, the email pages, the development mailbox -----------------------------


@pytest.mark.parametrize(
    "rule",
    [access.SIGNED_IN, access.ONBOARDING, access.COMPLETED, access.OPEN_STEP, step_open(P)],
    ids=lambda r: r.name,
)
def test_every_signed_in_rule_needs_a_verified_email(rule: access.Rule) -> None:
    reached = C if rule is access.COMPLETED else P
    assert permits(rule, reached, P, verified=True) is True
    assert permits(rule, reached, P, verified=False) is False


def test_rules_without_a_session_ignore_verification() -> None:
    for rule in (access.ANYONE, access.DEVELOPMENT):
        assert permits(rule, None) and permits(rule, P, verified=False)


def test_an_unverified_account_belongs_on_the_check_your_email_page() -> None:
    assert home_for(P, verified=False) == "/verify-email"
    for page in ("/", "/login", "/signup", "/forgot-password", *WIZARD_PAGES, "/explore"):
        assert decide(page, P, verified=False) == "/verify-email", page
    assert decide("/verify-email", P, verified=False) is None
    assert access.refused_target(C, "/explore", verified=False) == "/verify-email"


@pytest.mark.parametrize("reached", [None, P, C])
def test_the_email_pages(reached: str | None) -> None:
    home = None if reached is None else home_for(reached)
    assert decide("/verify-email", reached) == home  # confirmed: nothing left to confirm
    assert decide("/verify-email/", None) is None
    assert decide("/forgot-password", reached) == home  # a guest page
    assert decide("/reset-password", reached) is None  # a link works whoever is signed in
    assert decide("/verify-email", reached, "/settings") == ("/settings" if reached == C else home)


def test_the_development_mailbox_is_refused_in_production(settings: object) -> None:
    from onboard_app.settings import override_settings
    from tests.conftest import make_settings

    assert page_rule("/dev/mail") is access.DEVELOPMENT
    assert decide("/dev/mail", None) is None and permits(access.DEVELOPMENT, C)
    override_settings(make_settings(environment="production"))
    try:
        assert permits(access.DEVELOPMENT, None) is False
        assert permits(access.DEVELOPMENT, C) is False
        assert decide("/dev/mail", None) == "/login"
    finally:
        override_settings(None)
