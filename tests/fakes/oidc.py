"""A real OpenID Connect provider for tests: ``oauth2-mock-server`` run by Node.

The Makefile installs ``oauth2-mock-server`` into ``.tools/node_modules``. This module starts
it through its JS API (a small script passed to ``node -e``) on ``127.0.0.1`` and a free port,
with a fresh RSA signing key, waits for its discovery document and stops it afterwards.

The mock signs real ID tokens (RS256, its JWKS at ``/jwks``), echoes the ``nonce`` of the
authorization request and checks PKCE. Per test, :meth:`OidcProvider.configure` changes
what the next logins get, through a control endpoint the script adds:

* ``id_token_claims``: claims merged into every ID token (``sub``, ``email``,
  ``email_verified``, ``name``, or a wrong ``nonce``/``aud``/``iss``/``exp``);
* ``remove_claims``: claim names deleted from the ID token;
* ``kid``: a key id the JWKS does not have;
* ``tamper``: ``"payload"`` (payload edited after signing) or ``"alg_none"`` (unsigned);
* ``token_status``: an HTTP status for the token endpoint (e.g. 500);
* ``userinfo``: the body of the UserInfo endpoint;
* ``discovery``: fields merged into the discovery document (the mock's own document moves
  to ``/__test__/mock-discovery`` so that the script can serve the merged one);
* ``callback_params``: query parameters set on the redirect back to the client (an ``iss``
  per RFC 9207, a changed ``code``);
* ``require_auth_method``: answer ``401 invalid_client`` to a token request that does not
  authenticate the client this way (``client_secret_basic``, ``client_secret_post``, ``none``).

:meth:`OidcProvider.token_requests` tells how each token request authenticated the client,
as seen on the wire; :meth:`OidcProvider.rotate_key` adds a signing key to the JWKS.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / ".tools" / "node_modules" / "oauth2-mock-server"
CONTROL_PATH = "/__test__/config"

_SCRIPT = r"""
const { OAuth2Server } = require(process.env.OIDC_MOCK_MODULE);
const port = Number(process.env.OIDC_MOCK_PORT);

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const unb64 = (text) => JSON.parse(Buffer.from(text, "base64url").toString());

// How a token request authenticated the client: RFC 6749 2.3.1 (Basic: form-encoded
// id and secret, base64) or the form body.
const clientAuth = (req) => {
  const header = req.headers.authorization || "";
  if (header.toLowerCase().startsWith("basic ")) {
    const decoded = Buffer.from(header.slice(6), "base64").toString();
    const colon = decoded.indexOf(":");
    const part = (text) => decodeURIComponent(text.replace(/\+/g, " "));
    return {
      method: "client_secret_basic",
      client_id: part(decoded.slice(0, colon)),
      client_secret: part(decoded.slice(colon + 1)),
      secret_in_body: "client_secret" in req.body,
    };
  }
  return {
    method: "client_secret" in req.body ? "client_secret_post" : "none",
    client_id: req.body.client_id ?? null,
    client_secret: req.body.client_secret ?? null,
    secret_in_body: "client_secret" in req.body,
  };
};

(async () => {
  const server = new OAuth2Server(undefined, undefined, {
    endpoints: { wellKnownDocument: "/__test__/mock-discovery" },
  });
  await server.issuer.keys.generate("RS256");
  server.issuer.url = `http://127.0.0.1:${port}`;
  let config = {};
  let tokenRequests = [];
  const app = server.service.requestHandler;
  app.post("/__test__/config", (req, res) => {
    config = req.body || {};
    tokenRequests = [];
    res.json({ ok: true });
  });
  app.get("/__test__/token-requests", (_req, res) => res.json(tokenRequests));
  app.post("/__test__/rotate-key", async (_req, res) => {
    await server.issuer.keys.generate("RS256");
    res.json({ ok: true });
  });
  app.get("/.well-known/openid-configuration", (req, res) => {
    const document = server.service.openidConfigurationHandler(req, { json: (body) => body });
    res.json({ ...document, ...(config.discovery || {}) });
  });
  server.service.on("beforeAuthorizeRedirect", ({ url }) => {
    for (const [name, value] of Object.entries(config.callback_params || {})) {
      url.searchParams.set(name, value);
    }
  });
  // Access tokens carry a scope; ID tokens do not.
  server.service.on("beforeTokenSigning", (token) => {
    if ("scope" in token.payload) return;
    Object.assign(token.payload, config.id_token_claims || {});
    for (const name of config.remove_claims || []) delete token.payload[name];
    if (config.kid) token.header.kid = config.kid;
  });
  server.service.on("beforeResponse", (response, req) => {
    const auth = clientAuth(req);
    tokenRequests.push(auth);
    if (config.require_auth_method && auth.method !== config.require_auth_method) {
      response.statusCode = 401;
      response.body = { error: "invalid_client" };
      return;
    }
    if (config.token_status) {
      response.statusCode = config.token_status;
      response.body = { error: "server_error" };
      return;
    }
    const idToken = response.body && response.body.id_token;
    if (!idToken || !config.tamper) return;
    const [header, payload, signature] = idToken.split(".");
    if (config.tamper === "payload") {
      const claims = unb64(payload);
      claims.sub = "mallory";
      response.body.id_token = `${header}.${b64(claims)}.${signature}`;
    } else if (config.tamper === "alg_none") {
      response.body.id_token = `${b64({ alg: "none", typ: "JWT" })}.${payload}.`;
    }
  });
  server.service.on("beforeUserinfo", (response) => {
    if (config.userinfo) response.body = config.userinfo;
  });
  await server.start(port, "127.0.0.1");
  console.log(`ready ${server.issuer.url}`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
process.on("SIGTERM", () => process.exit(0));
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OidcProvider:
    """A running ``oauth2-mock-server``.

    Attributes:
        issuer: The issuer URL (``http://127.0.0.1:<port>``), also its base URL.
        client_id: The client id the app should use (the mock accepts any).
        client_secret: The client secret the app should use (the mock accepts any).
    """

    def __init__(self, process: subprocess.Popen[bytes], issuer: str, log_path: Path) -> None:
        """Wrap a started server (use :func:`start_oidc_provider`)."""
        self.process = process
        self.issuer = issuer
        self.log_path = log_path
        self.client_id = "onboard-test-client"
        self.client_secret = "onboard-test-secret"

    def configure(self, **config: Any) -> None:
        """Replace the per-test behaviour (see the module docstring); no arguments resets it."""
        request = urllib.request.Request(
            self.issuer + CONTROL_PATH,
            data=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def reset(self) -> None:
        """Back to the mock's defaults (``sub`` ``johndoe``, no email)."""
        self.configure()

    def rotate_key(self) -> None:
        """Add a second RS256 key to the JWKS; every later ID token is signed with it.

        The mock's keys take turns per token and each token response signs its access
        token first, so with two keys the ID token always gets the new one (call this once
        per server).
        """
        request = urllib.request.Request(self.issuer + "/__test__/rotate-key", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def token_requests(self) -> list[dict[str, Any]]:
        """How each token request since the last :meth:`configure` authenticated the client.

        Returns:
            One dict per request: ``method`` (``client_secret_basic``,
            ``client_secret_post`` or ``none``), ``client_id``, ``client_secret`` and
            ``secret_in_body``.
        """
        with urllib.request.urlopen(self.issuer + "/__test__/token-requests", timeout=5) as got:
            requests: list[dict[str, Any]] = json.load(got)
        return requests

    def app_env(self, label: str = "Sign in with Acme ID") -> dict[str, str]:
        """The ``ONBOARD_OIDC_*`` variables that point the app at this provider."""
        return {
            "ONBOARD_OIDC_ISSUER": self.issuer,
            "ONBOARD_OIDC_CLIENT_ID": self.client_id,
            "ONBOARD_OIDC_CLIENT_SECRET": self.client_secret,
            "ONBOARD_OIDC_LABEL": label,
        }

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_oidc_provider(tmp: Path, *, port: int | None = None) -> OidcProvider:
    """Start ``oauth2-mock-server`` and wait until its discovery document answers.

    Args:
        tmp: A folder for the server's log.
        port: The port (a free one by default).

    Returns:
        The running provider.

    Raises:
        RuntimeError: If Node or the package is missing, or the server does not come up.
    """
    node = shutil.which("node")
    if node is None or not (MODULE / "package.json").exists():
        raise RuntimeError(
            "oauth2-mock-server is not installed: `make test` installs it into .tools "
            "(npm install --prefix .tools oauth2-mock-server@7.2.1); Node 18+ is required"
        )
    port = port or _free_port()
    issuer = f"http://127.0.0.1:{port}"
    log_path = tmp / f"oidc-{port}.log"
    env = {
        "PATH": str(Path(node).parent),
        "OIDC_MOCK_MODULE": str(MODULE),
        "OIDC_MOCK_PORT": str(port),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [node, "-e", _SCRIPT], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    provider = OidcProvider(process, issuer, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"oauth2-mock-server exited early:\n{provider.log()}")
        try:
            url = f"{issuer}/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=2) as response:
                if json.load(response).get("issuer") == issuer:
                    return provider
        except OSError:
            pass
        time.sleep(0.1)
    provider.stop()
    raise RuntimeError(f"oauth2-mock-server did not answer within 30 s:\n{provider.log()}")


def running_oidc_provider(tmp: Path) -> Iterator[OidcProvider]:
    """A started provider for a fixture: ``yield from running_oidc_provider(tmp)``."""
    provider = start_oidc_provider(tmp)
    try:
        yield provider
    finally:
        provider.stop()
