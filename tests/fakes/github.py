"""A local stand-in for GitHub's OAuth app endpoints, spoken over real HTTP.

It checks what GitHub checks (client credentials, registered redirect URI, one-time code,
PKCE S256 verifier) and answers like GitHub (JSON when asked for it, errors in a 200 body
for a bad code), so the app's real authlib client talks to it unchanged. Knobs let a test
make the provider deny access, forge the ``state``, fail or hang at the token endpoint.

Usage::

    with GitHubFake(client_id="id", client_secret="secret",
                    redirect_uri="http://localhost:3000/auth/callback/github") as github:
        github.user = GitHubUser(id=42, login="ada", ...)
        env = github.app_env()
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


def _verified_primary(email: str) -> list[dict[str, Any]]:
    return [{"email": email, "primary": True, "verified": True, "visibility": "private"}]


@dataclass
class GitHubUser:
    """The account the fake signs in as.

    Attributes:
        id: GitHub's numeric user id.
        login: The user name.
        name: The display name (may be ``None`` on GitHub).
        avatar_url: The avatar URL.
        email: The public profile address (not what the app must use).
        emails: What ``/user/emails`` lists (with ``primary`` and ``verified`` flags).
    """

    id: int = 4242
    login: str = "octocat"
    name: str | None = "Mona Octocat"
    avatar_url: str = "https://avatars.example.com/u/4242"
    email: str | None = None
    emails: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def with_verified_email(cls, email: str, **changes: Any) -> GitHubUser:
        """A user whose primary address is verified."""
        return cls(emails=_verified_primary(email), **changes)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    user: GitHubUser


@dataclass
class GitHubFake:
    """GitHub's OAuth endpoints on ``127.0.0.1`` and a free port, in a background thread.

    Attributes:
        client_id: The registered client id.
        client_secret: The registered client secret.
        redirect_uri: The registered callback URL (must be sent exactly).
        user: The account the next authorization signs in as.
        deny: Redirect back with ``error=access_denied`` instead of a code.
        forged_state: Redirect back with this ``state`` instead of the one received.
        token_status: Answer the token endpoint with this HTTP status (e.g. 500).
        token_delay: Seconds the token endpoint waits before answering.
        authorize_requests: The query of every authorization request received.
        token_requests: The form of every token request received.
    """

    client_id: str = "github-client-id"
    client_secret: str = "github-client-secret"
    redirect_uri: str = ""
    user: GitHubUser = field(default_factory=GitHubUser)
    deny: bool = False
    forged_state: str | None = None
    token_status: int | None = None
    token_delay: float = 0.0
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _tokens: dict[str, GitHubUser] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- lifecycle ---

    def start(self) -> GitHubFake:
        """Listen on a free port and serve in a daemon thread."""
        fake = self

        class Handler(_Handler):
            github = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving (a hanging token request is abandoned)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GitHubFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to a cooperative GitHub with the default user; forget recorded requests."""
        self.user = GitHubUser()
        self.deny = False
        self.forged_state = None
        self.token_status = None
        self.token_delay = 0.0
        self.authorize_requests.clear()
        self.token_requests.clear()

    # --- addresses ---

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def authorize_url(self) -> str:
        """The authorization endpoint."""
        return f"{self.base_url}/login/oauth/authorize"

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.base_url}/login/oauth/access_token"

    def app_env(self) -> dict[str, str]:
        """The ``ONBOARD_GITHUB_*`` variables that point the app at this fake."""
        return {
            "ONBOARD_GITHUB_CLIENT_ID": self.client_id,
            "ONBOARD_GITHUB_CLIENT_SECRET": self.client_secret,
            "ONBOARD_GITHUB_AUTHORIZE_URL": self.authorize_url,
            "ONBOARD_GITHUB_TOKEN_URL": self.token_url,
            "ONBOARD_GITHUB_API_URL": self.base_url,
        }

    def pending_codes(self) -> int:
        """How many issued codes were not redeemed yet."""
        with self._lock:
            return len(self._grants)

    # --- endpoint logic (called from the handler threads) ---

    def _authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        self.authorize_requests.append(dict(query))
        problems = [
            name
            for name, ok in (
                ("client_id", query.get("client_id") == self.client_id),
                ("redirect_uri", query.get("redirect_uri") == self.redirect_uri),
                ("response_type", query.get("response_type") == "code"),
                ("code_challenge_method", query.get("code_challenge_method") == "S256"),
                ("code_challenge", len(query.get("code_challenge", "")) == 43),
                ("state", bool(query.get("state"))),
            )
            if not ok
        ]
        if problems:
            return 400, {}, "bad authorization request: " + ", ".join(problems)
        state = self.forged_state or query["state"]
        if self.deny:
            params = {
                "error": "access_denied",
                "error_description": "The user has denied your application access.",
                "state": state,
            }
        else:
            code = secrets.token_hex(10)
            with self._lock:
                self._grants[code] = _Grant(
                    self.client_id, query["redirect_uri"], query["code_challenge"], self.user
                )
            params = {"code": code, "state": state}
        return 302, {"Location": f"{self.redirect_uri}?{urlencode(params)}"}, ""

    def _access_token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(dict(form))
        if self.token_delay:
            time.sleep(self.token_delay)
        if self.token_status is not None:
            return self.token_status, {"message": "Server Error"}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id or not hmac.compare_digest(
            (client_secret or "").encode(), self.client_secret.encode()
        ):
            return 200, {"error": "incorrect_client_credentials"}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant.redirect_uri:
            return 200, {"error": "bad_verification_code"}
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if not verifier or challenge != grant.challenge:
            return 200, {"error": "bad_verification_code"}
        token = "gho_" + secrets.token_hex(18)
        with self._lock:
            self._tokens[token] = grant.user
        return 200, {"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}

    def _user_for(self, authorization: str) -> GitHubUser | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        with self._lock:
            return self._tokens.get(token)


class _Handler(BaseHTTPRequestHandler):
    github: GitHubFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: object) -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/login/oauth/authorize":
            status, headers, text = self.github._authorize(query)
            self._send(status, text.encode(), {"Content-Type": "text/plain", **headers})
            return
        user = self.github._user_for(self.headers.get("Authorization", ""))
        if parts.path in ("/user", "/user/emails") and user is None:
            self._json(401, {"message": "Requires authentication"})
        elif parts.path == "/user" and user is not None:
            self._json(
                200,
                {
                    "id": user.id,
                    "login": user.login,
                    "name": user.name,
                    "avatar_url": user.avatar_url,
                    "email": user.email,
                },
            )
        elif parts.path == "/user/emails" and user is not None:
            self._json(200, user.emails)
        else:
            self._json(404, {"message": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if urlsplit(self.path).path != "/login/oauth/access_token":
            self._json(404, {"message": "Not Found"})
            return
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        status, payload = self.github._access_token(form, self.headers.get("Authorization", ""))
        if status >= 500:
            self._send(status, b"<html><body>Unicorn!</body></html>", {"Content-Type": "text/html"})
        elif "application/json" in self.headers.get("Accept", ""):
            self._json(status, payload)
        else:  # GitHub's default answer is form-encoded
            body = urlencode(payload).encode()
            self._send(status, body, {"Content-Type": "application/x-www-form-urlencoded"})


def running_github(redirect_uri: str, **changes: Any) -> Iterator[GitHubFake]:
    """A started fake for a fixture: ``yield from running_github(url)``."""
    fake = GitHubFake(redirect_uri=redirect_uri, **changes).start()
    try:
        yield fake
    finally:
        fake.stop()
