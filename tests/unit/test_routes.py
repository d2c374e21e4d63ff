"""Route builders and the ``next=`` allow-list."""

from __future__ import annotations

import pytest

from onboard_app import routes
from onboard_app.routes import login_with_next, safe_next
from onboard_app.services.onboarding import COMPLETED, REVIEW, StepSpec, wizard_steps

ALLOWED = [
    "/explore",
    "/settings",
    "/onboarding/profile",
    "/onboarding/interests",
    "/onboarding/preferences",
    "/onboarding/review",
]


def test_route_constants() -> None:
    assert routes.onboarding("profile") == "/onboarding/profile"
    assert routes.onboarding(REVIEW) == "/onboarding/review"
    assert routes.onboarding(COMPLETED) == "/explore"
    assert routes.onboarding_pages() == tuple(f"/onboarding/{s}" for s in wizard_steps())
    assert routes.onboarding_pages() == (
        "/onboarding/profile",
        "/onboarding/interests",
        "/onboarding/preferences",
        "/onboarding/review",
    )
    assert routes.oauth_callback("github") == "/auth/callback/github"
    assert routes.oauth_callback("oidc") == "/auth/callback/oidc"
    assert routes.next_allowed() == frozenset(ALLOWED)


def test_a_step_added_through_the_spec_has_a_page_and_is_a_next_target(
    flow_v2: StepSpec,
) -> None:
    assert routes.onboarding(flow_v2.key) == "/onboarding/workplace"
    assert routes.onboarding_pages() == (
        "/onboarding/profile",
        "/onboarding/interests",
        "/onboarding/preferences",
        "/onboarding/workplace",
        "/onboarding/review",
    )
    assert routes.next_allowed() == frozenset((*ALLOWED, "/onboarding/workplace"))
    assert safe_next("/onboarding/workplace") == "/onboarding/workplace"
    assert login_with_next("/onboarding/workplace") == "/login?next=/onboarding/workplace"


def test_a_step_not_in_the_deployed_spec_is_no_next_target() -> None:
    assert safe_next("/onboarding/workplace") is None
    assert login_with_next("/onboarding/workplace") == "/login"


@pytest.mark.parametrize("target", ALLOWED)
def test_safe_next_accepts_known_routes(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "value",
    [
        # absolute and scheme-relative
        "https://evil.example/explore",
        "http://evil.example",
        "//evil.example",
        "//evil.example/explore",
        "///evil.example",
        "////evil.example",
        "https:/explore",
        "https:explore",
        # backslashes
        "/\\evil.example",
        "\\\\evil.example",
        "\\/evil.example",
        "/explore\\",
        "/\\/evil.example",
        # encoded slashes and other encodings
        "/%2fevil.example",
        "/%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/explore%2F",
        "/%65xplore",
        # script and data URLs
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        # control characters and whitespace
        "/explore\r\nSet-Cookie: token=x",
        "/explore\r",
        "/explore\n",
        "/explore\t",
        "/\texplore",
        "/explore\x00",
        " /explore",
        "/explore ",
        "/exp lore",
        "/explore\u2028",
        "/explore\u200b",
        # query strings and fragments
        "/explore?x=1",
        "/explore?next=//evil.example",
        "/explore#frag",
        "/explore?",
        "/explore#",
        # relative paths and traversal
        "explore",
        "./explore",
        "/./explore",
        "/../explore",
        "/onboarding/../explore",
        "/explore/",
        "/explore//",
        "/EXPLORE",
        # pages that are not destinations
        "",
        "/",
        "/login",
        "/signup",
        "/onboarding",
        "/onboarding/completed",
        "/onboarding/unknown",
        "/auth/callback/github",
        "/auth/login/github",
        "/admin",
        # over-long values
        "/explore" + "/" * 300,
        "/" + "a" * 199,
        "/" + "a" * 10_000,
        # non-strings
        None,
        5,
        b"/explore",
        ["/explore"],
        {"next": "/explore"},
        ("/explore",),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_safe_next_refuses(value: object) -> None:
    assert safe_next(value) is None


def test_login_with_next() -> None:
    assert login_with_next("/explore") == "/login?next=/explore"
    assert login_with_next("/onboarding/interests") == "/login?next=/onboarding/interests"
    assert login_with_next("/") == "/login"
    assert login_with_next("/unknown") == "/login"
    assert login_with_next("//evil.example") == "/login"
    assert login_with_next("/explore\r\nX: y") == "/login"


# --- mailed links ---------------------------------------------------------------------------


def test_emailed_links_carry_the_token_in_the_fragment() -> None:
    link = routes.emailed_link("https://app.example/", routes.RESET_PASSWORD, "abc-_XYZ")
    assert link == "https://app.example/reset-password#token=abc-_XYZ"
    assert routes.link_token(link.partition("#")[2]) == "abc-_XYZ"
    assert routes.absolute("https://app.example", routes.LOGIN) == "https://app.example/login"


@pytest.mark.parametrize(
    "fragment",
    [None, 5, "", "token=", "x=1", "token=a&token=b", "token=" + "a" * 600, ["token=a"]],
    ids=repr,
)
def test_link_token_refuses_what_is_not_one_token(fragment: object) -> None:
    assert routes.link_token(fragment) is None
