"""Password reset: "forgot password" asks for a mail, the mailed link sets a new password.

The request answers the same whether or not the address has an account: the screen
changes to "check your email" before anything that would differ (only a registered
address gets a mail). The link's page keeps the link's token server-side (it leaves the
address bar at once), shows the strength meter against the account's own words, and uses
the link when the new password is accepted: the user is signed in and every other
session of the account ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import reflex as rx
from sqlalchemy.exc import SQLAlchemyError

from onboard_app import routes
from onboard_app.services import account_mail, accounts, passwords, recovery
from onboard_app.services import mail as mail_service
from onboard_app.services.access import ANYONE
from onboard_app.services.account_limits import make_account_limits
from onboard_app.services.audit import audit
from onboard_app.services.email_links import REFUSAL_MESSAGES
from onboard_app.services.mail import MAIL_FAILED, MailFailed
from onboard_app.services.text import safe_text
from onboard_app.state.auth import (
    FORGET_LINK_TOKEN,
    MAX_FIELD,
    AuthFormState,
    client_address,
    focus_first,
    form_field,
    sign_in,
)
from onboard_app.state.session import OUTAGE_MESSAGE, Events, requires

log = logging.getLogger("onboard.recovery")

PASSWORD_CHANGED: Final = "Your password has been changed. Every other device is signed out."  # noqa: S105


class ForgotPasswordState(rx.State):
    """The "forgot password" form and its "check your email" answer."""

    email: str = ""
    #: The request was taken: the page shows "check your email" (for any address).
    sent: bool = False
    form_error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False

    @requires(ANYONE)
    def reset_form(self) -> None:
        """An empty form: called by the links that open the page (``form_link``)."""
        self.sent, self.form_error, self.field_errors, self.busy = False, "", {}, False

    @requires(ANYONE)
    async def request_reset(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Mail a reset link if the address has an account; answer the same either way.

        Args:
            form: The submitted form (``email``).
        """
        email = form_field(form, "email")
        self.email = safe_text(email, max_chars=MAX_FIELD)
        self.form_error, self.field_errors = "", {}
        if self.busy:
            return
        self.busy = True
        yield None
        try:
            mail = await asyncio.to_thread(
                recovery.request_reset, email, client_address(self), make_account_limits()
            )
        except accounts.FormErrors as problem:
            self.field_errors = problem.errors
            yield focus_first(problem.errors)
            return
        except recovery.Throttled as refused:
            self.form_error = str(refused)
            audit("throttled", reason="reset", client=client_address(self))
            return
        except SQLAlchemyError:
            log.exception("password reset not issued: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        # The answer, the same for every address, before the mail (if any) is sent.
        self.sent = True
        yield None
        if mail is None:
            return
        result = await mail_service.send_async(mail)
        if isinstance(result, MailFailed):
            self.form_error = MAIL_FAILED


class ResetPasswordState(AuthFormState):
    """The page a reset link opens: choose a new password."""

    #: The link can be used: the form is shown.
    ready: bool = False
    #: Why the link cannot be used (the page offers to ask for a new one).
    link_error: str = ""
    _token: str = ""
    _account: dict[str, str] = {}

    @requires(ANYONE)
    async def open_link(self) -> AsyncIterator[Events]:
        """``on_load``: keep the link's token server-side and check that it can be used."""
        token = routes.link_token(self.router.url.fragment)
        if token is not None:
            yield FORGET_LINK_TOKEN
            self._token = token
        self._clear()
        self.form_error = self.link_error = ""
        self.ready = False
        if not self._token:
            self.link_error = REFUSAL_MESSAGES[recovery.Refusal.INVALID]
            return
        try:
            account = await asyncio.to_thread(recovery.reset_link_account, self._token)
        except SQLAlchemyError:
            log.exception("reset link not checked: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        if isinstance(account, recovery.Refusal):
            self._forget_link(account)
            return
        self._account = {"email": account.email, "name": account.display_name}
        self.email = account.email
        self.ready = True

    def _forget_link(self, refusal: recovery.Refusal) -> None:
        self._token, self._account = "", {}
        self.ready, self.email = False, ""
        self.link_error = REFUSAL_MESSAGES[refusal]

    @requires(ANYONE)
    async def rate_password(self, password: str) -> None:
        """The strength meter, as the new password is typed (debounced in the page).

        Args:
            password: The password typed so far.
        """
        if self.ready:
            await self._rate(password, self._account.get("email"), self._account.get("name"))

    @requires(ANYONE)
    async def reset_password(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Set the new password, sign in, end every other session, tell the owner by mail.

        Args:
            form: The submitted form (``password``).
        """
        password = form_field(form, "password")
        self.form_error, self.field_errors = "", {}
        if not self.ready or not self._token or self.busy:
            return
        self.busy = True
        yield None
        try:
            user = await passwords.in_hash_pool(recovery.reset_password, self._token, password)
        except accounts.FormErrors as problem:
            yield self._refuse(problem.errors)
            return
        except recovery.LinkRefused as refused:
            self._forget_link(refused.reason)
            audit("signin_failed", reason=f"reset_{refused.reason}", client=client_address(self))
            return
        except SQLAlchemyError:
            log.exception("password reset failed: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        self._token, self._account, self.ready = "", {}, False
        self._clear()
        yield [await sign_in(self, user, "password_reset"), rx.toast.success(PASSWORD_CHANGED)]
        if user.email:
            # A notice only: its failure is logged (mail.send) and changes nothing here.
            await mail_service.send_async(account_mail.password_changed(user.email))
