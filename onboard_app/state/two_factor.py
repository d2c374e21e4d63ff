"""Two-factor authentication: the code step of a sign-in, and the settings section.

**Sign-in.** Every sign-in goes through :func:`onboard_app.state.auth.sign_in`, which asks
:func:`hold_for_second_factor` first: for an enrolled account no session is created; the
tab's backend-only state keeps a pending sign-in (the user, how they proved who they are,
the websocket connection that did it, an expiry) and the login page asks for a code. Only
:meth:`TwoFactorSignInState.submit_code` of that same connection, before the expiry, can
finish it, through the same ``sign_in``. A passkey proves possession and user verification
in one step and is not asked again.

**Settings.** Turning it on: the current password, then the QR code and the secret, then a
code from the app, then the ten recovery codes, shown once. Turning it off: the password
and a code (or a recovery code).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any, Final

import reflex as rx
from reflex.event import EventSpec
from reflex.state import BaseState
from sqlalchemy.exc import SQLAlchemyError

from onboard_app import routes
from onboard_app.models import User
from onboard_app.services import access, account_mail, accounts, two_factor, users
from onboard_app.services.account_settings import (
    CURRENT_PASSWORD,
    NO_PASSWORD,
    NoPassword,
    WrongPassword,
)
from onboard_app.services.audit import audit
from onboard_app.services.mail_templates import SecurityChange
from onboard_app.services.recovery import Throttled
from onboard_app.services.throttle import make_throttle
from onboard_app.services.two_factor import CodeRefused, EnrolmentRefused, TwoFactorThrottled
from onboard_app.settings import get_settings
from onboard_app.state.auth import LoginState, client_address, form_field, sign_in
from onboard_app.state.session import OUTAGE_MESSAGE, Events, requires, verified_session

log = logging.getLogger("onboard.two_factor")

#: Sign-ins that need no code after them: a passkey is two factors by itself.
SECOND_FACTOR_NOT_ASKED: Final = frozenset({"passkey"})
#: How long a pending sign-in waits for its code.
PENDING_SECONDS: Final = 300
#: Wrong codes one pending sign-in allows; then the password is asked again.
TRIES_PER_SIGN_IN: Final = 5
#: The code field of every two-factor form.
CODE: Final = "code"
#: The ids of the forms' controls (what a refused submit focuses), by field.
CONTROL_IDS: Final = {CURRENT_PASSWORD: "two-factor-password", CODE: "two-factor-code"}

SIGN_IN_AGAIN: Final = "Your sign-in has timed out. Log in again."
TOO_MANY_TRIES: Final = "Too many wrong codes. Log in again."
ENTER_RECOVERY_CODE: Final = "Enter one of your recovery codes."
SAVE_CODES_FIRST: Final = "Confirm that you have saved your recovery codes."


def focus_error(errors: dict[str, str]) -> EventSpec | None:
    """Move the focus to the first control that has an error."""
    first = next((name for name in CONTROL_IDS if name in errors), None)
    return rx.set_focus(CONTROL_IDS[first]) if first else None


@dataclass
class PendingSignIn:
    """A sign-in whose password was right, waiting for its code (never sent to the browser)."""

    user_id: int
    method: str
    connection: str
    expires: float
    tries: int = 0


async def hold_for_second_factor(
    state: BaseState, user: User, method: str, *, next_path: object = None
) -> EventSpec | None:
    """For an enrolled account, keep the sign-in pending in this tab and ask for a code.

    Args:
        state: The calling state (any state of the tab).
        user: The account that has just proved its first factor.
        method: How (for the audit line of the sign-in that follows).
        next_path: Where the user asked to go (kept in the login page's ``next=`` if it is
            an allowed route).

    Returns:
        ``None`` when no code is needed (sign in now); else the login page's code step
        (never a session).

    Raises:
        SQLAlchemyError: The account's two-factor status could not be read.
    """
    if method in SECOND_FACTOR_NOT_ASKED or user.id is None:
        return None
    if not await asyncio.to_thread(two_factor.is_enrolled, user.id):
        return None
    step = await state.get_state(TwoFactorSignInState)
    step._hold(user.id, method)
    target = routes.login_with_next(next_path) if isinstance(next_path, str) else routes.LOGIN
    return rx.redirect(target, replace=True)


class TwoFactorSignInState(rx.State):
    """The login page's code step: a code from the app, or a recovery code."""

    #: A pending sign-in waits for its code: the login page shows the code form.
    code_needed: bool = False
    #: The form asks for a recovery code instead of the app's code.
    use_recovery_code: bool = False
    form_error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False
    _pending: dict[str, Any] | None = None

    def _hold(self, user_id: int, method: str) -> None:
        self._pending = {
            "user_id": user_id,
            "method": method,
            "connection": self.router.session.session_id,
            "expires": time.time() + PENDING_SECONDS,
            "tries": 0,
        }
        self.code_needed, self.use_recovery_code, self.busy = True, False, False
        self.form_error, self.field_errors = "", {}

    def _pending_now(self) -> PendingSignIn | None:
        """The pending sign-in, if this very connection made it and it has not expired."""
        raw = self._pending
        if not isinstance(raw, dict):
            return None
        pending = PendingSignIn(**raw)
        if pending.connection != self.router.session.session_id or pending.expires < time.time():
            return None
        return pending

    def _drop(self) -> None:
        self._pending = None
        self.code_needed, self.use_recovery_code, self.busy = False, False, False
        self.form_error, self.field_errors = "", {}

    async def _start_over(self, message: str) -> None:
        """Back to the password form, with why."""
        self._drop()
        login = await self.get_state(LoginState)
        login.form_error = message

    @requires(access.ANYONE)
    def toggle_recovery_code(self) -> EventSpec:
        """Ask for a recovery code instead of the app's code, or back (the field empties)."""
        self.use_recovery_code = not self.use_recovery_code
        self.field_errors = {}
        return rx.set_value(CONTROL_IDS[CODE], "")

    @requires(access.ANYONE)
    def cancel(self) -> None:
        """Give up this sign-in: the password form again."""
        self._drop()

    @requires(access.ANYONE)
    async def submit_code(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Finish the pending sign-in of this tab with a code, or start over.

        Args:
            form: The submitted form (``code``).
        """
        pending = self._pending_now()
        if pending is None:
            # No sign-in of this connection waits: whatever the code, nothing happens.
            if self._pending is not None or self.code_needed:
                await self._start_over(SIGN_IN_AGAIN)
            return
        code = form_field(form, CODE)
        self.form_error = ""
        if not code.strip():
            message = ENTER_RECOVERY_CODE if self.use_recovery_code else two_factor.ENTER_CODE
            self.field_errors = {CODE: message}
            yield focus_error(self.field_errors)
            return
        if self.busy:
            return
        self.field_errors = {}
        self.busy = True
        yield None
        client = client_address(self)
        try:
            accepted = await asyncio.to_thread(
                two_factor.check_code,
                pending.user_id,
                code,
                client,
                make_throttle(get_settings()),
            )
            user = await asyncio.to_thread(users.get_user, pending.user_id)
        except CodeRefused as refused:
            audit("signin_failed", user_id=pending.user_id, reason="second_factor", client=client)
            pending.tries += 1
            if pending.tries >= TRIES_PER_SIGN_IN:
                await self._start_over(TOO_MANY_TRIES)
                return
            self._pending = asdict(pending)
            self.field_errors = {CODE: str(refused)}
            yield focus_error(self.field_errors)
            return
        except TwoFactorThrottled as refused:
            audit("throttled", user_id=pending.user_id, reason="second_factor", client=client)
            self.form_error = str(refused)
            return
        except SQLAlchemyError:
            log.exception("second factor of user %s not checked: database error", pending.user_id)
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        self._drop()
        if user is None:  # deleted meanwhile
            await self._start_over(accounts.LOGIN_FAILED)
            return
        events = [await sign_in(self, user, pending.method, second_factor=accepted.kind)]
        if accepted.kind == "recovery_code":
            left = accepted.recovery_codes_left
            events.append(
                rx.toast.warning(
                    f"You used a recovery code: {left} left. Each one works once; "
                    "you can make new ones by turning two-factor authentication off and on "
                    "in Settings."
                )
            )
        yield events


class TwoFactorSettingsState(rx.State):
    """The "Two-factor authentication" section of ``/settings``."""

    loaded: bool = False
    #: Only a password account can turn it on (a provider account signs in there).
    has_password: bool = False
    enrolled: bool = False
    recovery_codes_left: int = 0
    #: ``""`` (the summary), ``password`` (turning on: the password), ``scan`` (the QR
    #: code and the first code), ``codes`` (the recovery codes, once), ``disable``.
    stage: str = ""
    qr_code: str = ""
    secret_text: str = ""
    recovery_codes: list[str] = []
    codes_saved: bool = False
    form_error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False

    def _user_id(self) -> int | None:
        session = verified_session()
        return session.user.id if session else None

    def _show(self, stage: str) -> None:
        self.stage = stage
        self.form_error, self.field_errors, self.busy = "", {}, False
        if stage != "scan":
            self.qr_code = self.secret_text = ""
        if stage != "codes":
            self.recovery_codes, self.codes_saved = [], False

    async def _account(self) -> User | None:
        user_id = self._user_id()
        return await asyncio.to_thread(users.get_user, user_id) if user_id is not None else None

    def _refuse(self, errors: dict[str, str]) -> EventSpec | None:
        self.field_errors = errors
        return focus_error(errors)

    @requires(access.COMPLETED)
    async def load(self) -> Events:
        """``on_load`` of ``/settings``: whether two-factor is on."""
        self._show("")
        try:
            user = await self._account()
            if user is None or user.id is None:
                return None
            status = await asyncio.to_thread(two_factor.status, user.id)
        except SQLAlchemyError:
            log.exception("two-factor status not read: database error")
            return rx.toast.error(OUTAGE_MESSAGE)
        self.has_password = user.password_hash is not None
        self.enrolled, self.recovery_codes_left = status.enrolled, status.recovery_codes_left
        self.loaded = True
        return None

    @requires(access.COMPLETED)
    def start(self) -> None:
        """Turning on, first step: ask for the current password."""
        if not self.enrolled and self.has_password:
            self._show("password")

    @requires(access.COMPLETED)
    def start_disable(self) -> None:
        """Turning off: ask for the password and a code."""
        if self.enrolled:
            self._show("disable")

    async def _notify(self, change: SecurityChange) -> None:
        """Mail the account's owner that its second factor changed (they may not have)."""
        session = verified_session()
        if session is not None:
            await account_mail.send_security_notice(session.user.email, change)

    def _audit_refusal(self, reason: str) -> None:
        """A wrong password or code while changing the second factor, as the account forms."""
        audit("reauth_failed", user_id=self._user_id(), reason=reason, client=client_address(self))

    @requires(access.COMPLETED)
    async def cancel(self) -> None:
        """Leave the current step; a setup that waits for its first code is dropped."""
        user_id = self._user_id()
        if self.stage == "scan" and user_id is not None:
            try:
                await asyncio.to_thread(two_factor.cancel_enrolment, user_id)
            except SQLAlchemyError:
                log.exception("two-factor setup not dropped: database error")
        self._show("")

    @requires(access.COMPLETED)
    async def check_password(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Turning on: after the password, show the QR code and the secret.

        Args:
            form: The submitted form (``current_password``).
        """
        if self.busy or self.stage != "password":
            return
        self.form_error, self.field_errors, self.busy = "", {}, True
        yield None
        try:
            user = await self._account()
            if user is None:
                return
            setup = await asyncio.to_thread(
                two_factor.begin_enrolment,
                user,
                form_field(form, CURRENT_PASSWORD),
                client_address(self),
                make_throttle(get_settings()),
            )
        except WrongPassword as wrong:
            self._audit_refusal("wrong_password")
            yield self._refuse(wrong.errors)
            return
        except accounts.FormErrors as problem:
            yield self._refuse(problem.errors)
            return
        except (Throttled, EnrolmentRefused) as refused:
            self.form_error = str(refused)
            return
        except NoPassword:
            self.form_error = NO_PASSWORD
            return
        except SQLAlchemyError:
            log.exception("two-factor setup not started: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        self._show("scan")
        self.qr_code, self.secret_text = setup.qr_code, two_factor.grouped(setup.secret)

    @requires(access.COMPLETED)
    async def confirm(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Turning on: a code from the app confirms it; the recovery codes are shown once.

        Args:
            form: The submitted form (``code``).
        """
        user_id = self._user_id()
        if self.busy or self.stage != "scan" or user_id is None:
            return
        self.form_error, self.field_errors, self.busy = "", {}, True
        yield None
        try:
            codes = await asyncio.to_thread(
                two_factor.confirm_enrolment,
                user_id,
                form_field(form, CODE),
                client_address(self),
                make_throttle(get_settings()),
            )
        except CodeRefused as refused:
            yield self._refuse({CODE: str(refused)})
            return
        except (TwoFactorThrottled, EnrolmentRefused) as refused:
            self.form_error = str(refused)
            return
        except SQLAlchemyError:
            log.exception("two-factor setup not confirmed: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        audit("two_factor_enabled", user_id=user_id, client=client_address(self))
        self._show("codes")
        self.recovery_codes = codes
        self.enrolled, self.recovery_codes_left = True, len(codes)
        yield None  # the codes are shown while the notice goes out
        await self._notify("two_factor_on")

    @requires(access.COMPLETED)
    def set_codes_saved(self, checked: bool) -> None:
        """The "I have saved these codes" box.

        Args:
            checked: Whether it is ticked.
        """
        self.codes_saved = checked is True
        self.form_error = ""

    @requires(access.COMPLETED)
    def finish(self) -> Events:
        """Leave the recovery codes (they are never shown again)."""
        if self.stage != "codes":
            return None
        if not self.codes_saved:
            self.form_error = SAVE_CODES_FIRST
            return rx.set_focus("two-factor-codes-saved")
        self._show("")
        return rx.toast.success("Two-factor authentication is on.")

    @requires(access.COMPLETED)
    async def disable(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Turning off, after the password and a code (or a recovery code).

        Args:
            form: The submitted form (``current_password``, ``code``).
        """
        if self.busy or self.stage != "disable":
            return
        self.form_error, self.field_errors, self.busy = "", {}, True
        yield None
        try:
            user = await self._account()
            if user is None or user.id is None:
                return
            await asyncio.to_thread(
                two_factor.turn_off,
                user,
                form_field(form, CURRENT_PASSWORD),
                form_field(form, CODE),
                client_address(self),
                make_throttle(get_settings()),
            )
        except WrongPassword as wrong:
            self._audit_refusal("wrong_password")
            yield self._refuse(wrong.errors)
            return
        except accounts.FormErrors as problem:
            yield self._refuse(problem.errors)
            return
        except CodeRefused as refused:
            self._audit_refusal("wrong_code")
            yield self._refuse({CODE: str(refused)})
            return
        except (Throttled, TwoFactorThrottled, EnrolmentRefused) as refused:
            self.form_error = str(refused)
            return
        except NoPassword:
            self.form_error = NO_PASSWORD
            return
        except SQLAlchemyError:
            log.exception("two-factor not turned off: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        audit("two_factor_disabled", user_id=user.id, client=client_address(self))
        self._show("")
        self.enrolled, self.recovery_codes_left = False, 0
        yield rx.toast.success("Two-factor authentication is off.")
        await self._notify("two_factor_off")
