"""Login and signup forms with local accounts."""

from __future__ import annotations

import logging
from typing import Any

import reflex as rx
from reflex.event import EventSpec

from onboard_app.models import User
from onboard_app.services import access, accounts, oauth, passwords
from onboard_app.services.access import ANYONE
from onboard_app.services.audit import audit
from onboard_app.services.onboarding import Step, parse_step
from onboard_app.services.sessions import start_session
from onboard_app.services.text import safe_text
from onboard_app.services.throttle import make_throttle
from onboard_app.settings import get_settings
from onboard_app.state.session import SessionState, requires

log = logging.getLogger("onboard.auth")

MAX_FIELD = 1024


def _reached(user: User) -> Step:
    return parse_step(user.onboarding_step) or Step.PROFILE


def _field(form: object, name: str) -> str:
    """A text field of a submitted form; anything odd becomes an empty string.

    The services refuse what is left that they cannot use (lone surrogates, control
    characters): sign-up with a field message, login as a failed attempt.
    """
    value = form.get(name, "") if isinstance(form, dict) else ""
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def _failure_reason(failure: accounts.LoginFailed) -> str:
    """A word for the audit line (the message shown is the same for every reason)."""
    return "unavailable" if str(failure) == accounts.LOGIN_UNAVAILABLE else "bad_credentials"


class AuthFormState(rx.State):
    """What the login and signup forms share: the email typed, errors, busy flag."""

    email: str = ""
    form_error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False
    show_password: bool = False

    @requires(ANYONE)
    def toggle_password(self) -> None:
        """Show or hide the password."""
        self.show_password = not self.show_password

    @requires(ANYONE)
    def reset_form(self) -> EventSpec | None:
        """``on_load`` of the login/signup pages: clear errors, run the guard."""
        # A failed OAuth sign-in lands here with ``?error=<code>``: show its fixed message.
        self.form_error = oauth.message_for(self.router.url.query_parameters.get("error"))
        self.field_errors = {}
        self.busy = False
        self.show_password = False
        return None

    def _client_address(self) -> str:
        return self.router.session.client_ip or "unknown"

    async def _signed_in(self, user: User) -> list[EventSpec]:
        session_state = await self.get_state(SessionState)
        session_state._adopt(start_session(user), user)
        audit("signin", user_id=user.id, method="password", client=self._client_address())
        next_param = self.router.url.query_parameters.get("next")
        target = access.decide(self.router.url.path, _reached(user), next_param)
        return [rx.redirect(target or access.home_for(_reached(user)), replace=True)]


class LoginState(AuthFormState):
    """The login form."""

    @requires(ANYONE)
    async def log_in(self, form: dict[str, Any]):
        """Check email + password; on success start a session and go where the guard says.

        Args:
            form: The submitted form (``email``, ``password``).
        """
        email, password = _field(form, "email"), _field(form, "password")
        self.email = safe_text(email, max_chars=MAX_FIELD)
        self.form_error = ""
        self.field_errors = {
            k: m
            for k, v, m in (
                ("email", self.email, "Enter your email."),
                ("password", password, "Enter your password."),
            )
            if not v
        }
        if self.field_errors:
            return
        self.busy = True
        yield
        throttle = make_throttle(get_settings())
        try:
            user = await passwords.in_hash_pool(
                accounts.log_in, email, password, self._client_address(), throttle
            )
        except accounts.LoginFailed as failure:
            self.form_error = str(failure)
            throttled = isinstance(failure, accounts.LoginThrottled)
            audit(
                "throttled" if throttled else "signin_failed",
                reason="login" if throttled else _failure_reason(failure),
                client=self._client_address(),
            )
            return
        finally:
            self.busy = False
        for event in await self._signed_in(user):
            yield event


class SignupState(AuthFormState):
    """The signup form."""

    @requires(ANYONE)
    async def sign_up(self, form: dict[str, Any]):
        """Create a local account and start its session at the first onboarding step.

        Args:
            form: The submitted form (``email``, ``password``).
        """
        email, password = _field(form, "email"), _field(form, "password")
        self.email = safe_text(email, max_chars=MAX_FIELD)
        self.form_error = ""
        self.field_errors = {}
        self.busy = True
        yield
        try:
            user = await passwords.in_hash_pool(
                accounts.sign_up,
                email,
                password,
                self._client_address(),
                make_throttle(get_settings()),
            )
        except accounts.FormErrors as problem:
            self.field_errors = problem.errors
            return
        except accounts.SignUpRefused as refused:
            self.form_error = str(refused)
            audit("throttled", reason="signup", client=self._client_address())
            return
        finally:
            self.busy = False
        audit("signup", user_id=user.id, method="password", client=self._client_address())
        yield rx.toast.success("Welcome to Onboard! Let's set up your profile.")
        for event in await self._signed_in(user):
            yield event
