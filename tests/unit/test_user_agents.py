"""The device a session signed in from, as the settings page names it."""

from __future__ import annotations

import time

import pytest

from onboard_app.services.user_agents import (
    DESKTOP,
    MAX_USER_AGENT,
    PHONE,
    TABLET,
    UNKNOWN,
    DeviceInfo,
    device_label,
    parse_user_agent,
)

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("header", "label", "form_factor"),
    [
        (CHROME_LINUX, "Chrome on Linux", DESKTOP),
        (CHROME_LINUX.replace("Chrome/", "HeadlessChrome/"), "Chrome on Linux", DESKTOP),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
            PHONE,
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1",
            "Safari on iPad",
            TABLET,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Mobile Safari/537.36",
            "Chrome on Pixel 8",
            PHONE,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on macOS",
            DESKTOP,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
            "Edge on Windows",
            DESKTOP,
        ),
        ("curl/8.4.0", "curl", UNKNOWN),
        ("", "Unknown device", UNKNOWN),
        ("not a browser at all", "Unknown device", UNKNOWN),
    ],
)
def test_common_browsers_are_named_as_people_say_them(
    header: str, label: str, form_factor: str
) -> None:
    device = parse_user_agent(header)
    assert (device.label, device.form_factor) == (label, form_factor)


@pytest.mark.parametrize("junk", [None, 5, b"Chrome", ["Chrome"], {"ua": "x"}, "   "])
def test_anything_that_is_not_a_header_is_an_unknown_device(junk: object) -> None:
    assert parse_user_agent(junk) == DeviceInfo()


def test_client_text_comes_out_printable_and_short() -> None:
    # A device model is whatever the client wrote there: controls, bidi overrides and
    # non-ASCII are dropped, and the words are cut to the column sizes.
    crafted = (
        "Mozilla/5.0 (Linux; Android 14; \u202eEvil\x1b[31m" + "X" * 80 + " Build/X) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
    )
    device = parse_user_agent(crafted)
    assert device.device.startswith("Evil[31mXXX")  # the model the client wrote, cleaned
    for word in (device.browser, device.system, device.device):
        assert word.isascii() and word.isprintable()
    assert len(device.device) <= 60 and len(device.browser) <= 40 and len(device.system) <= 40


def test_a_huge_header_is_cut_before_parsing() -> None:
    parse_user_agent(CHROME_LINUX)  # the rules are compiled on first use
    began = time.perf_counter()
    device = parse_user_agent(CHROME_LINUX + " " + "x" * 1_000_000)
    assert time.perf_counter() - began < 1.0
    assert device.label == "Chrome on Linux" and MAX_USER_AGENT < 1_000_000


def test_labels_say_what_is_known() -> None:
    assert device_label("Chrome", "Linux") == "Chrome on Linux"
    assert device_label("Safari", "iOS", "iPhone") == "Safari on iPhone"
    assert device_label("Firefox", "") == "Firefox"
    assert device_label("", "Windows") == "Unknown browser on Windows"
    assert device_label("", "") == "Unknown device"
