"""Route builders and the ``next=`` allow-list."""

from __future__ import annotations

import pytest

from onboard_app import routes
from onboard_app.routes import login_with_next, safe_next
from onboard_app.services.onboarding import WIZARD_STEPS, Step

ALLOWED = [
    "/explore",
    "/settings",
    "/onboarding/profile",
    "/onboarding/interests",
    "/onboarding/preferences",
    "/onboarding/review",
]


def test_route_constants() -> None:
    assert routes.onboarding(Step.PROFILE) == "/onboarding/profile"
    assert routes.onboarding(Step.REVIEW) == "/onboarding/review"
    assert routes.onboarding(Step.COMPLETED) == "/explore"
    assert tuple(f"/onboarding/{s.value}" for s in WIZARD_STEPS) == routes.ONBOARDING_PAGES
    assert routes.oauth_callback("github") == "/auth/callback/github"
    assert routes.oauth_callback("oidc") == "/auth/callback/oidc"
    assert set(routes.NEXT_ALLOWED) == set(ALLOWED)


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
