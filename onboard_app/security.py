"""HTTP security headers on every response, and the origins allowed to open the websocket.

``security_headers`` is passed to ``rx.App(api_transformer=...)``, so it wraps the whole
ASGI app Reflex serves: the backend routes (``/_event``, ``/ping``, ...) always, and in
production (``reflex run --env prod``, single port) the compiled frontend pages too. In
development the pages come from Vite on another port and carry Vite's headers, not these.

The Content-Security-Policy allows no inline script except the exact ones the page was
built with: for every HTML response the middleware reads the body and lists the SHA-256
of each inline ``<script>`` (React Router's hydration data and Reflex's theme script), so
an injected ``<script>`` does not run. It still needs:

* ``'unsafe-eval'`` in ``script-src``: Reflex runs server-sent ``rx.toast`` (and any
  ``_call_function`` event) with ``eval``;
* ``'unsafe-inline'`` in ``style-src``: Emotion inserts ``<style>`` tags and Radix sets
  ``style=""`` attributes at run time;
* ``ws:``/``wss:`` to the public address (and ``REFLEX_API_URL``) in ``connect-src``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any, Final
from urllib.parse import urlsplit

from onboard_app import routes
from onboard_app.settings import Settings, get_settings

Scope = Mapping[str, Any]
Message = dict[str, Any]

#: Backend endpoints whose answers are per-user or live: never cached.
BACKEND_PREFIXES: Final = ("/_event", "/ping", "/_health", "/_upload", "/_all_routes")
#: Pages whose HTML must never be kept by a browser or proxy (and the OAuth callback,
#: whose URL carries the authorization code).
PRIVATE_PAGES: Final = (
    routes.ONBOARDING_PREFIX,
    routes.EXPLORE,
    routes.SETTINGS,
    routes.OAUTH_CALLBACK_PREFIX,
    routes.VERIFY_EMAIL,
    routes.FORGOT_PASSWORD,
    routes.RESET_PASSWORD,
    routes.DEV_MAILBOX,
    routes.ADMIN_ONBOARDING,
)
PERMISSIONS_POLICY: Final = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
#: HTML bodies larger than this are passed through unhashed (the policy then blocks
#: their inline scripts: nothing this app builds comes close).
MAX_HTML_BYTES: Final = 2 * 1024 * 1024

_INLINE_SCRIPT: Final = re.compile(
    rb"<script\b(?P<attrs>[^>]*)>(?P<body>.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_HAS_SRC: Final = re.compile(rb"\ssrc\s*=", re.IGNORECASE)


def origin_of(url: str) -> str:
    """The ``scheme://host[:port]`` origin of an absolute URL (``""`` if it has none).

    Args:
        url: An absolute http(s) URL.

    Returns:
        The origin, lower-cased as browsers send it.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(settings: Settings) -> list[str]:
    """The browser origins allowed to open the event websocket and call the backend.

    Production allows only the public address (a page on any other site cannot drive a
    user's session through their browser); development allows any origin, as Vite and the
    backend run on different ports.

    Args:
        settings: The app settings.

    Returns:
        The ``cors_allowed_origins`` for Reflex's config.
    """
    if not settings.is_production:
        return ["*"]
    return [origin_of(settings.public_url)]


def _websocket_origin(origin: str) -> str:
    return origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def content_security_policy(
    settings: Settings,
    *,
    api_url: str | None = None,
    script_hashes: Iterable[str] = (),
) -> str:
    """The Content-Security-Policy of a response.

    Args:
        settings: The app settings (its public URL).
        api_url: Where the frontend reaches the backend, if not the public address.
        script_hashes: ``sha256-...`` sources of the page's own inline scripts.

    Returns:
        The header value.
    """
    connect = ["'self'"]
    for url in (settings.public_url, api_url or ""):
        origin = origin_of(url)
        for source in (origin, _websocket_origin(origin)):
            if source and source not in connect:
                connect.append(source)
    scripts = ["'self'", "'unsafe-eval'", *(f"'{value}'" for value in script_hashes)]
    directives = [
        "default-src 'self'",
        "script-src " + " ".join(scripts),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: https:",
        "font-src 'self' data:",
        "connect-src " + " ".join(connect),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def inline_script_hashes(html: bytes) -> list[str]:
    """The CSP hash sources of the inline scripts of an HTML document.

    Args:
        html: The document.

    Returns:
        ``sha256-<base64>`` per distinct inline script, in document order.
    """
    found: list[str] = []
    for match in _INLINE_SCRIPT.finditer(html):
        if _HAS_SRC.search(match.group("attrs")):
            continue
        digest = base64.b64encode(hashlib.sha256(match.group("body")).digest()).decode()
        source = f"sha256-{digest}"
        if source not in found:
            found.append(source)
    return found


def is_private_path(path: str) -> bool:
    """Whether a response for this path must carry ``Cache-Control: no-store``.

    Args:
        path: The request path.

    Returns:
        True for the protected pages (any trailing slash or ``.html``/``/index.html``
        form) and the backend's event and API routes.
    """
    lowered = path.lower()
    if any(lowered == p or lowered.startswith(p + "/") for p in BACKEND_PREFIXES):
        return True
    page = lowered.removesuffix(".gz").removesuffix(".html").removesuffix("/index")
    page = page.rstrip("/") or "/"
    return any(page == p or page.startswith(p + "/") for p in PRIVATE_PAGES)


def _is_page_request(path: str) -> bool:
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return "." not in last or last.endswith(".html")


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _read_limited(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_HTML_BYTES + 1)
    except OSError:
        return b""


class SecurityHeaders:
    """ASGI middleware adding the security headers to every HTTP response."""

    def __init__(
        self, app: Any, settings: Settings | None = None, api_url: str | None = None
    ) -> None:
        """Wrap an ASGI app.

        Args:
            app: The app to wrap.
            settings: The app settings (default: process-wide, read on first use).
            api_url: The backend address the frontend uses (default: Reflex's ``api_url``).
        """
        self.app = app
        self._settings = settings
        self._api_url = api_url

    @cached_property
    def settings(self) -> Settings:
        """The settings the headers are built from."""
        return self._settings or get_settings()

    @cached_property
    def api_url(self) -> str | None:
        """The backend address the frontend uses."""
        if self._api_url is not None:
            return self._api_url
        try:
            from reflex.config import get_config

            return str(get_config().api_url or "") or None
        except Exception:  # pragma: no cover - no Reflex config outside an app
            return None

    def _static_headers(self, path: str, csp: str | None) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", PERMISSIONS_POLICY.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if csp is not None:
            headers.append((b"content-security-policy", csp.encode()))
        if self.settings.public_url.startswith("https://"):
            headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
        if is_private_path(path):
            headers.append((b"cache-control", b"no-store"))
        return headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Handle one ASGI connection.

        Args:
            scope: The ASGI scope.
            receive: The ASGI receive callable.
            send: The ASGI send callable.
        """
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if _is_page_request(path):
            scope = self._gzip_only(scope)
        start: Message | None = None
        body: list[bytes] = []
        size = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = _header(headers, b"content-type") or b""
                if content_type.startswith(b"text/html") and scope.get("method") == "GET":
                    start = message  # held back until the body is known
                    return
                await send(self._finish(message, path, hashes=None))
                return
            if start is not None and message["type"] == "http.response.pathsend":
                # Zero-copy file send (granian): the body is the file at ``path``.
                held, start = start, None
                document = _read_limited(message.get("path", ""))
                await send(self._finish(held, path, hashes=self._hashes(held, document)))
                await send(message)
                return
            if start is not None and message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                body.append(chunk)
                size += len(chunk)
                if message.get("more_body", False) and size <= MAX_HTML_BYTES:
                    return
                held, start = start, None
                document = b"".join(body)
                await send(self._finish(held, path, hashes=self._hashes(held, document)))
                await send({**message, "body": document})
                return
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _hashes(self, start: Message, document: bytes) -> list[str]:
        encoding = (_header(start.get("headers", []), b"content-encoding") or b"").lower()
        if encoding == b"gzip":
            try:
                document = gzip.decompress(document)
            except (OSError, EOFError):
                return []
        elif encoding not in (b"", b"identity"):
            return []
        if len(document) > MAX_HTML_BYTES:
            return []
        return inline_script_hashes(document)

    def _finish(self, start: Message, path: str, hashes: list[str] | None) -> Message:
        headers = [
            (key, value)
            for key, value in start.get("headers", [])
            if not (key.lower() == b"cache-control" and is_private_path(path))
        ]
        # A 304 keeps the policy the browser stored with the full response.
        csp = None
        if start.get("status") != 304:
            csp = content_security_policy(
                self.settings, api_url=self.api_url, script_hashes=hashes or ()
            )
        present = {key.lower() for key, _ in headers}
        headers += [h for h in self._static_headers(path, csp) if h[0] not in present]
        return {**start, "headers": headers}

    @staticmethod
    def _gzip_only(scope: Any) -> Any:
        """Ask for gzip at most: the hashes need a body this module can decompress."""
        headers = list(scope.get("headers", []))
        accept = _header(headers, b"accept-encoding")
        if accept is None:
            return scope
        wanted = [
            part.strip()
            for part in accept.split(b",")
            if part.strip().split(b";")[0].strip().lower() in (b"gzip", b"identity")
        ]
        rewritten = [(k, v) for k, v in headers if k.lower() != b"accept-encoding"]
        if wanted:
            rewritten.append((b"accept-encoding", b", ".join(wanted)))
        return {**scope, "headers": rewritten}


def security_headers(app: Any) -> SecurityHeaders:
    """Wrap the app Reflex serves (``rx.App(api_transformer=security_headers)``).

    Args:
        app: The ASGI app.

    Returns:
        The app with security headers on every HTTP response.
    """
    return SecurityHeaders(app)
