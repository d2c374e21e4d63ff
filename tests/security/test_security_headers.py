"""``onboard_app.security`` as an ASGI middleware, on the edge cases a server can produce.

(The same headers on a running production app: ``test_http_hardening.py``.)
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from pathlib import Path
from typing import Any

import pytest

from onboard_app.security import (
    SecurityHeaders,
    content_security_policy,
    inline_script_hashes,
    is_private_path,
)
from tests.conftest import make_settings

PAGE = (
    b"<!doctype html><html><head><script>window.a=1</script>"
    b'<script type="module">import "/assets/x.js";</script>'
    b'<script src="/assets/y.js"></script></head><body></body></html>'
)
SETTINGS = make_settings(environment="production", public_url="https://onboard.example")


def sha(body: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def html_app(body: bytes, *, status: int = 200, encoding: str | None = None, chunks: int = 3):
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        app.seen_scope = scope
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        if encoding:
            headers.append((b"content-encoding", encoding.encode()))
        headers.append((b"cache-control", b"public, max-age=60"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        size = max(1, len(body) // chunks)
        pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        for index, piece in enumerate(pieces):
            more = index < len(pieces) - 1
            await send({"type": "http.response.body", "body": piece, "more_body": more})

    app.seen_scope = None
    return app


async def call(app: Any, path: str, method: str = "GET", **headers: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }
    await SecurityHeaders(app, settings=SETTINGS, api_url="https://api.onboard.example")(
        scope, receive, send
    )
    return sent


def response_headers(sent: list[dict[str, Any]]) -> dict[str, str]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    return {k.decode(): v.decode() for k, v in start["headers"]}


def body_of(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_inline_scripts_are_hashed_and_external_ones_are_not() -> None:
    assert inline_script_hashes(PAGE) == [
        sha(b"window.a=1"),
        sha(b'import "/assets/x.js";'),
    ]


async def test_html_response_gets_hashes_and_an_unchanged_body() -> None:
    sent = await call(html_app(PAGE), "/login/")
    headers = response_headers(sent)
    assert body_of(sent) == PAGE
    assert f"'{sha(b'window.a=1')}'" in headers["content-security-policy"]
    assert "strict-transport-security" in headers  # an https public address
    assert headers["cache-control"] == "public, max-age=60"  # a public page keeps its caching


async def test_gzip_html_is_hashed_from_its_decompressed_body() -> None:
    compressed = gzip.compress(PAGE)
    sent = await call(html_app(compressed, encoding="gzip"), "/login/")
    assert body_of(sent) == compressed
    assert f"'{sha(b'window.a=1')}'" in response_headers(sent)["content-security-policy"]


async def test_an_encoding_it_cannot_read_gets_no_hashes_so_inline_scripts_stay_blocked() -> None:
    sent = await call(html_app(b"\x00brotli bytes", encoding="br"), "/login/")
    policy = response_headers(sent)["content-security-policy"]
    script_src = next(p for p in policy.split("; ") if p.startswith("script-src"))
    assert script_src == "script-src 'self' 'unsafe-eval'"


async def test_pages_ask_the_server_for_gzip_at_most() -> None:
    app = html_app(PAGE)
    await call(app, "/explore", accept_encoding="br;q=1.0, zstd, gzip;q=0.5")
    assert dict(app.seen_scope["headers"])[b"accept-encoding"] == b"gzip;q=0.5"
    await call(app, "/assets/app.js", accept_encoding="br, gzip")
    assert dict(app.seen_scope["headers"])[b"accept-encoding"] == b"br, gzip"


async def test_not_modified_keeps_the_stored_policy() -> None:
    sent = await call(html_app(b"", status=304), "/login/")
    assert "content-security-policy" not in response_headers(sent)
    assert response_headers(sent)["x-frame-options"] == "DENY"


async def test_head_gets_the_headers_without_buffering() -> None:
    sent = await call(html_app(PAGE), "/login/", method="HEAD")
    assert "content-security-policy" in response_headers(sent)


async def test_private_page_replaces_any_cache_control_with_no_store() -> None:
    for path in ("/explore", "/explore/", "/explore.html", "/onboarding/profile/index.html"):
        headers = response_headers(await call(html_app(PAGE), path))
        assert headers["cache-control"] == "no-store", path


async def test_zero_copy_file_send_is_hashed_from_the_file(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_bytes(PAGE)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/html")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(page)})

    sent = await call(app, "/login/")
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert f"'{sha(b'window.a=1')}'" in response_headers(sent)["content-security-policy"]


async def test_websocket_connections_pass_through_untouched() -> None:
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "websocket.accept"})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/_event/", "headers": []}
    await SecurityHeaders(app, settings=SETTINGS)(scope, None, send)
    assert seen == [scope] and sent == [{"type": "websocket.accept"}]


@pytest.mark.parametrize(
    ("path", "private"),
    [
        ("/explore", True),
        ("/Explore/", True),
        ("/settings/", True),
        ("/onboarding/review", True),
        ("/auth/callback/oidc", True),
        ("/_event/", True),
        ("/ping", True),
        ("/login", False),
        ("/", False),
        ("/assets/explore.js", False),
        ("/explorer", False),
    ],
)
def test_private_paths(path: str, private: bool) -> None:
    assert is_private_path(path) is private


def test_connect_src_names_the_public_and_api_websockets() -> None:
    policy = content_security_policy(SETTINGS, api_url="https://api.onboard.example:8443/")
    connect = next(p for p in policy.split("; ") if p.startswith("connect-src"))
    assert connect.split()[1:] == [
        "'self'",
        "https://onboard.example",
        "wss://onboard.example",
        "https://api.onboard.example:8443",
        "wss://api.onboard.example:8443",
    ]
