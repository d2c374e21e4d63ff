"""Sign-in with GitHub / OpenID Connect: start at the button, finish on the callback page.

The pending login (``state``, PKCE verifier, ``nonce``) lives in a backend-only var of this
tab's state, so the ``state`` is bound to the browser tab that started the login: the
provider sends the same tab back (a same-tab navigation keeps Reflex's client token), and
a callback URL opened anywhere else finds nothing. The pending login is dropped before the
callback is checked, so every callback URL works at most once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import reflex as rx
from reflex.event import EventSpec
from reflex.state import BaseState
from sqlalchemy.exc import SQLAlchemyError

from onboard_app import routes
from onboard_app.services import linking, oauth
from onboard_app.services.access import ANYONE
from onboard_app.services.audit import audit
from onboard_app.settings import get_settings
from onboard_app.state.auth import LoginState, sign_in
from onboard_app.state.session import requires

log = logging.getLogger("onboard.oauth")


async def _login_with_error(state: BaseState, code: str) -> EventSpec:
    """Back to the login page, its form emptied and showing the failure's fixed message.

    The message is put on the form here, by what sends the tab there, not by the page's
    ``on_load`` (see onboard_app.py); ``?error=`` tells the address bar what happened.
    """
    (await state.get_state(LoginState))._empty(oauth.message_for(code))
    return rx.redirect(f"{routes.LOGIN}?error={code}", replace=True)


class OAuthState(rx.State):
    """The login in flight with an external provider (server-side only)."""

    _pending: dict[str, Any] | None = None

    @requires(ANYONE)
    async def start_login(self, provider: str) -> EventSpec | None:
        """Send this tab to the provider's authorization page.

        Args:
            provider: ``github`` or ``oidc``; anything else, or a provider that is not
                configured, is ignored.

        """
        settings = get_settings()
        client = oauth.provider_settings(settings, provider)
        if client is None:
            return None
        next_path = routes.safe_next(self.router.url.query_parameters.get("next"))
        try:
            url, pending = await oauth.begin(
                client, settings.oauth_callback_url(client.name), next_path
            )
        except oauth.OAuthError as failure:
            log.warning("oauth %s login could not start: %s", client.name, failure.code)
            return await _login_with_error(self, failure.code)
        self._pending = pending.to_dict()
        # Same tab (not is_external): the tab keeps its client token, hence this state.
        return rx.redirect(url)

    @requires(ANYONE)
    async def complete_login(self) -> EventSpec:
        """``on_load`` of the callback pages: check the callback, sign the user in."""
        pending = oauth.PendingLogin.from_dict(self._pending)
        self._pending = None  # one-time, whatever happens next
        if pending is not None and pending.purpose == oauth.REAUTHENTICATE:
            # A signed-in user proving who they are again (to delete the account): no sign-in.
            from onboard_app.state.account import continue_reauthentication

            return await continue_reauthentication(self, pending)
        url = self.router.url
        provider_name = url.path.rstrip("/").rsplit("/", 1)[-1]
        settings = get_settings()
        client = oauth.provider_settings(settings, provider_name)
        try:
            if client is None:
                raise oauth.OAuthError("state_mismatch")
            identity = await oauth.complete(
                client,
                pending,
                dict(url.query_parameters),
                settings.oauth_callback_url(client.name),
            )
            user = await asyncio.to_thread(linking.sign_in_external, identity)
        except oauth.OAuthError as failure:
            audit(
                "signin_failed",
                reason=failure.code,
                method=client.name if client else "unknown",
                client=self.router.session.client_ip,
            )
            return await _login_with_error(self, failure.code)
        except SQLAlchemyError:
            log.exception("oauth %s login failed: database error", client.name if client else "-")
            return await _login_with_error(self, "server_error")
        # The next= the login started with (checked then, and again by sign_in).
        return await sign_in(
            self,
            user,
            client.name,
            next_path=pending.next_path if pending else None,
            on_outage=lambda: _login_with_error(self, "server_error"),
        )
