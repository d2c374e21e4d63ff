"""Login, sign-up, and the "check your email" screen that confirms an address.

Sign-up never starts a session: it always answers "check your email" (the mail says what
happened), and the address's confirmation (the mail's link, or its code typed on that
screen) signs the new user in. A login whose address is not confirmed yet gets the same
screen and a fresh verification mail instead of a session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import reflex as rx
from reflex.event import EventSpec
from reflex.state import BaseState
from sqlalchemy.exc import SQLAlchemyError

from onboard_app import routes
from onboard_app.models import User
from onboard_app.services import (
    access,
    account_mail,
    accounts,
    password_policy,
    passwords,
    recovery,
)
from onboard_app.services import mail as mail_service
from onboard_app.services.access import ANYONE
from onboard_app.services.account_limits import make_account_limits
from onboard_app.services.audit import audit
from onboard_app.services.mail import MAIL_FAILED, Mail, MailFailed, MailSent
from onboard_app.services.onboarding import Step, first_step, parse_step
from onboard_app.services.recovery import Pending
from onboard_app.services.text import safe_text
from onboard_app.services.throttle import make_throttle
from onboard_app.services.users import UserGone
from onboard_app.settings import get_settings
from onboard_app.state.session import (
    OUTAGE_MESSAGE,
    Events,
    SessionState,
    SessionUnavailable,
    requires,
    verified_session,
)

log = logging.getLogger("onboard.auth")

MAX_FIELD = 1024
CONFIRM_TO_CONTINUE: Final = "Confirm your email address to continue."
NO_PENDING: Final = (
    "Open the link in the email we sent you. To get a new one, log in or sign up again."
)
ENTER_CODE: Final = "Enter the 6-digit code from the email."
CONFIRMED: Final = "Your email address is confirmed."
#: Drops a mailed link's token from the address bar and this history entry.
FORGET_LINK_TOKEN: Final = rx.call_script(
    "window.history.replaceState(window.history.state, '', "
    "window.location.pathname + window.location.search)"
)
#: The order of the fields of every auth form: focus goes to the first invalid one.
FIELD_ORDER: Final = ("email", "password", "otp")


def _reached(user: User) -> Step:
    return parse_step(user.onboarding_step) or first_step()


def form_field(form: object, name: str) -> str:
    """A text field of a submitted form; anything odd becomes an empty string.

    The services refuse what is left that they cannot use (lone surrogates, control
    characters): sign-up with a field message, login as a failed attempt.
    """
    value = form.get(name, "") if isinstance(form, dict) else ""
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def client_address(state: BaseState) -> str:
    """The client's address, for the throttles (Reflex's, after trusted proxies)."""
    return state.router.session.client_ip or "unknown"


def focus_first(errors: dict[str, str]) -> EventSpec | None:
    """Move the focus to the first field that has an error."""
    first = next((name for name in FIELD_ORDER if name in errors), None)
    return rx.set_focus(first) if first else None


async def sign_in(
    state: BaseState,
    user: User,
    method: str,
    *,
    second_factor: str | None = None,
    next_path: str | None = None,
    on_outage: Callable[[], Awaitable[EventSpec]] | None = None,
) -> EventSpec:
    """Start a session for ``user`` in this tab and send it where it belongs.

    An account with two-factor authentication gets no session here until its code is
    accepted: the sign-in waits in this tab and the login page asks for the code
    (:mod:`onboard_app.state.two_factor`), which then calls this again.

    Args:
        state: The calling state.
        user: The account, as just read or written.
        method: How the user proved who they are (for the audit line).
        second_factor: The code accepted after ``method`` (``totp``, ``recovery_code``).
        next_path: Where the user asked to go when it is not this page's ``next=`` (an
            OAuth callback passes the one its login started with). Either is only a
            wish: it is followed if it is an allowed route the user may open.
        on_outage: Makes the answer when the database is down (default: a message on
            this page; a callback page has no form to stay on).

    Returns:
        The redirect (to ``next=`` if allowed, else the user's step or explore), or the
        code step.
    """
    url = state.router.url
    wanted = url.query_parameters.get("next") if next_path is None else next_path
    session_state = await state.get_state(SessionState)
    try:
        if second_factor is None:
            # Imported here: the two-factor state signs in through this very function.
            from onboard_app.state.two_factor import hold_for_second_factor

            held = await hold_for_second_factor(state, user, method, next_path=wanted)
            if held is not None:
                return held
        await session_state._start(user)
    except (SQLAlchemyError, UserGone):
        log.exception("sign-in of user %s not recorded: database error", user.id)
        return rx.toast.error(OUTAGE_MESSAGE) if on_outage is None else await on_outage()
    audit(
        "signin",
        user_id=user.id,
        method=method,
        second_factor=second_factor,
        client=client_address(state),
    )
    # Decided as on the login page, whichever page finished the sign-in.
    target = access.decide(routes.LOGIN, _reached(user), wanted)
    return rx.redirect(target or access.home_for(_reached(user)), replace=True)


def _failure_reason(failure: accounts.LoginFailed) -> str:
    """A word for the audit line (the message shown is the same for every reason)."""
    return "unavailable" if str(failure) == accounts.LOGIN_UNAVAILABLE else "bad_credentials"


class AuthFormState(rx.State):
    """What the auth forms share: the email typed, errors, busy flag, strength meter."""

    email: str = ""
    form_error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False
    show_password: bool = False
    #: The strength meter of a new password: -1 while nothing is rated.
    strength: int = -1
    strength_label: str = ""
    strength_hint: str = ""

    @requires(ANYONE)
    def toggle_password(self) -> None:
        """Show or hide the password."""
        self.show_password = not self.show_password

    @requires(ANYONE)
    def reset_form(self) -> None:
        """Empty the form: called by the links that open its page (``form_link``)."""
        self._empty()

    def _empty(self, form_error: str = "") -> None:
        """An empty form (showing ``form_error``), as the page is opened.

        Not the page's ``on_load``: Reflex sends that from an effect after the page is
        drawn, so a quick first submit can reach the server before it. A form whose submit
        is under way is left to it: its outcome (an error, or a redirect) lands when it ends.
        """
        if self.busy:
            return
        self.form_error = form_error
        self._clear()

    def _clear(self) -> None:
        self.field_errors = {}
        self.busy = False
        self.show_password = False
        self.strength, self.strength_label, self.strength_hint = -1, "", ""

    def _refuse(self, errors: dict[str, str]) -> EventSpec | None:
        """Show field errors and focus the first invalid field."""
        self.field_errors = errors
        return focus_first(errors)

    async def _rate(self, password: object, email: str | None, name: str | None) -> None:
        """Rate a password being typed, off the event loop (the meter shows the verdict).

        A refused password's field error follows what is typed: gone once it is
        acceptable, else the policy's reason for this one (the meter's hint is exactly it).
        """
        if not isinstance(password, str) or not password:
            self.strength, self.strength_label, self.strength_hint = -1, "", ""
            return
        verdict = await asyncio.to_thread(
            accounts.rate_new_password,
            password[:MAX_FIELD],
            email,
            name,
            client_address(self),
            make_account_limits(),
        )
        if verdict is None:
            return
        self.strength, self.strength_label, self.strength_hint = verdict
        if "password" in self.field_errors:
            errors = {k: v for k, v in self.field_errors.items() if k != "password"}
            if verdict.score < password_policy.MIN_SCORE:
                errors["password"] = verdict.hint
            self.field_errors = errors


class LoginState(AuthFormState):
    """The login form."""

    @requires(ANYONE, background=True)
    async def log_in(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Check email + password; on success start a session and go where the guard says.

        An account whose address is not confirmed yet gets a fresh verification mail and
        the "check your email" screen instead of a session.

        A background event, as sign-up: the tab's state stays unlocked while the password
        waits for a hash slot and is verified (in a storm, longer than Reflex may hold a
        tab's state lock); the form is busy meanwhile, and a second submit during one does
        nothing. The state is taken again only to write the outcome.

        Args:
            form: The submitted form (``email``, ``password``).
        """
        email, password = form_field(form, "email"), form_field(form, "password")
        async with self:
            if self.busy:
                return
            self.email = safe_text(email, max_chars=MAX_FIELD)
            self.form_error = ""
            errors = {
                k: m
                for k, v, m in (
                    ("email", self.email, "Enter your email."),
                    ("password", password, "Enter your password."),
                )
                if not v
            }
            focus = self._refuse(errors)
            if not errors:
                self.busy = True
            client = client_address(self)
        if errors:
            yield focus
            return
        try:
            user = await passwords.in_hash_pool(
                accounts.log_in, email, password, client, make_throttle(get_settings())
            )
        except accounts.LoginFailed as failure:
            async with self:
                self.busy = False
                self.form_error = str(failure)
            throttled = isinstance(failure, accounts.LoginThrottled)
            audit(
                "throttled" if throttled else "signin_failed",
                reason="login" if throttled else _failure_reason(failure),
                client=client,
            )
            return
        except BaseException:
            async with self:
                self.busy = False
            raise
        if accounts.needs_verification(user):
            audit("signin_failed", user_id=user.id, reason="unconfirmed", client=client)
            async for event in self._confirm_first(user):
                yield event
            return
        async with self:
            self.busy = False
            outcome = await sign_in(self, user, "password")
        yield outcome

    async def _confirm_first(self, user: User) -> AsyncIterator[Events]:
        """The password was right, the address is not confirmed: mail a link and a code.

        The screen is not busy while the mail goes out: a code typed from it may arrive
        before this background login takes the state again.
        """
        assert user.id is not None and user.email is not None
        async with self:
            self.busy = False
            verify = await self.get_state(VerifyEmailState)
            verify._wait_for(Pending(user.email, user.id))
            verify.notice = CONFIRM_TO_CONTINUE
        yield rx.redirect(routes.VERIFY_EMAIL)
        try:
            mail = await asyncio.to_thread(
                recovery.verification_mail, user.id, user.email, make_account_limits()
            )
        except recovery.Throttled as refused:
            failure = f"{refused} Use the link or the code of the last one."
        except SQLAlchemyError:
            log.exception("verification mail for user %s not issued: database error", user.id)
            failure = MAIL_FAILED
        else:
            result = await mail_service.send_async(mail)
            async with self:
                (await self.get_state(VerifyEmailState))._delivered(result)
            return
        async with self:
            (await self.get_state(VerifyEmailState)).form_error = failure


class SignupState(AuthFormState):
    """The sign-up form."""

    @requires(ANYONE)
    async def rate_password(self, password: str) -> None:
        """The strength meter, as the password is typed (debounced in the page).

        Args:
            password: The password typed so far.
        """
        await self._rate(password, self.email, None)

    @requires(ANYONE)
    def set_email(self, email: str) -> None:
        """Remember the address typed (the meter checks the password against it).

        Args:
            email: The email field's value.
        """
        typed = safe_text(email, max_chars=MAX_FIELD) if isinstance(email, str) else ""
        if typed != self.email:  # edited since it was refused: the error no longer applies
            self.field_errors = {k: v for k, v in self.field_errors.items() if k != "email"}
        self.email = typed

    @requires(ANYONE, background=True)
    async def sign_up(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Sign up; the answer is "check your email", whether or not the address is taken.

        A background event: the tab's state stays unlocked while the sign-up waits for a
        password-hash slot and while its mail goes out. In a sign-up storm either can take
        longer than Reflex may hold a tab's state lock (its opportunistic lease then fails
        to save, and the tab's next events time out); meanwhile the form shows "Creating
        your account…". A second submit while one is under way does nothing.

        Args:
            form: The submitted form (``email``, ``password``).
        """
        email, password = form_field(form, "email"), form_field(form, "password")
        async with self:
            if self.busy:
                return
            self.email = safe_text(email, max_chars=MAX_FIELD)
            self.form_error = ""
            self.field_errors = {}
            self.busy = True
            client = client_address(self)
        settings = get_settings()
        try:
            outcome = await passwords.in_hash_pool(
                accounts.sign_up,
                email,
                password,
                client,
                make_throttle(settings),
                make_account_limits(settings),
            )
        except accounts.FormErrors as problem:
            async with self:
                self.busy = False
                focus = self._refuse(problem.errors)
            yield focus
            return
        except accounts.SignUpRefused as refused:
            async with self:
                self.busy = False
                self.form_error = str(refused)
            audit("throttled", reason="signup", client=client)
            return
        except BaseException:
            async with self:
                self.busy = False
            raise
        user_id = outcome.user.id if outcome.user else None
        audit(
            "signup",
            user_id=user_id,
            method="password",
            existing=not outcome.created,
            client=client,
        )
        async with self:
            self._clear()
            verify = await self.get_state(VerifyEmailState)
            verify._wait_for(Pending(outcome.email, user_id if outcome.created else None))
            # Not busy while the mail goes out: a code typed from it may arrive before this
            # task takes the state again, and a busy screen would drop it.
        # The same answer in every case, before anything differs (the mail says the rest).
        yield rx.redirect(routes.VERIFY_EMAIL)
        try:
            mail = await asyncio.to_thread(_first_mail, outcome)
        except SQLAlchemyError:
            log.exception("sign-up mail not issued: database error")
            result: MailSent | MailFailed = MailFailed("not issued", transient=True)
        else:
            result = await mail_service.send_async(mail)
        async with self:
            verify = await self.get_state(VerifyEmailState)
            verify._delivered(result)


def _first_mail(outcome: accounts.SignedUp) -> Mail:
    """The mail a sign-up sends: a verification, or "someone tried to sign up"."""
    if outcome.created and outcome.user is not None and outcome.user.id is not None:
        return account_mail.verification(outcome.user.id, outcome.email)
    return account_mail.signup_attempt(outcome.email)


class VerifyEmailState(rx.State):
    """The "check your email" screen: where a verification link lands, the code, "send again".

    What the screen waits for (the address the mail went to, and the account if this tab
    created it) is kept server-side; the page shows the address only to the connection
    that typed it (a reload or another connection starts from nothing).
    """

    email: str = ""
    #: A mail was sent from this tab: its code can be typed here, and it can be sent again.
    waiting: bool = False
    notice: str = ""
    form_error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False
    _pending: dict[str, Any] | None = None

    def _wait_for(self, pending: Pending) -> None:
        self._pending = {"email": pending.email, "user_id": pending.user_id}
        self.email = pending.email
        self.waiting = True
        self.notice = self.form_error = ""
        self.field_errors = {}

    def _pending_now(self) -> Pending | None:
        raw = self._pending
        if not isinstance(raw, dict) or not isinstance(raw.get("email"), str):
            return None
        user_id = raw.get("user_id")
        return Pending(raw["email"], user_id if isinstance(user_id, int) else None)

    def _done(self) -> None:
        self._pending = None
        self.email, self.waiting, self.notice, self.form_error = "", False, "", ""
        self.field_errors = {}

    async def _deliver(self, mail: Mail) -> None:
        """Send a mail off the event loop; a failure is told on the screen."""
        self.busy = True
        try:
            result = await mail_service.send_async(mail)
        finally:
            self.busy = False
        self._delivered(result)

    def _delivered(self, result: MailSent | MailFailed) -> None:
        """Show how a send went (the screen was busy while it ran)."""
        self.busy = False
        if isinstance(result, MailFailed):
            self.notice = ""
            self.form_error = MAIL_FAILED

    @requires(ANYONE)
    async def open_page(self) -> AsyncIterator[Events]:
        """``on_load``: a verification link confirms the address and signs in; else the screen."""
        try:
            session = verified_session()
        except SessionUnavailable:
            session = None
        token = routes.link_token(self.router.url.fragment)
        if token is not None:
            confirmed_home = (
                access.home_for(session.user.onboarding_step)
                if session and session.user.email_verified
                else None
            )
            async for event in self._open_link(token, confirmed_home):
                yield event
            return
        if session is not None:
            if session.user.email_verified:
                yield rx.redirect(access.home_for(session.user.onboarding_step), replace=True)
                return
            if session.user.email and self._pending_now() is None:
                self._wait_for(Pending(session.user.email, session.user.id))
        self.waiting = self._pending_now() is not None

    async def _open_link(self, token: str, confirmed_home: str | None) -> AsyncIterator[Events]:
        """Use a verification link's token; a spent one sends a confirmed session home."""
        yield FORGET_LINK_TOKEN
        self.busy = True
        self.form_error = self.notice = ""
        yield None
        try:
            user = await asyncio.to_thread(recovery.confirm_with_token, token)
        except recovery.LinkRefused as refused:
            audit("signin_failed", reason=f"link_{refused.reason}", client=client_address(self))
            if confirmed_home is not None:
                yield [
                    rx.redirect(confirmed_home, replace=True),
                    rx.toast.info("Your email address is confirmed already."),
                ]
                return
            self.form_error = str(refused)
            self.waiting = self._pending_now() is not None
            return
        except SQLAlchemyError:
            log.exception("verification link not checked: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        self._done()
        yield rx.toast.success(CONFIRMED)
        yield await sign_in(self, user, "email_link")

    @requires(ANYONE)
    async def submit_code(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Confirm the address with the code of the mail this tab is waiting for.

        Args:
            form: The submitted form (``otp``).
        """
        code = form_field(form, "otp")
        pending = self._pending_now()
        self.form_error = ""
        if pending is None:
            self.form_error = NO_PENDING
            return
        if not code.strip():
            self.field_errors = {"otp": ENTER_CODE}
            yield focus_first(self.field_errors)
            return
        if self.busy:
            return
        self.field_errors = {}
        self.busy = True
        yield None
        try:
            user = await asyncio.to_thread(
                recovery.confirm_with_code, code, pending.email, make_account_limits()
            )
        except recovery.Throttled as refused:
            self.form_error = str(refused)
            audit("throttled", reason="code", client=client_address(self))
            return
        except recovery.LinkRefused as refused:
            self.field_errors = {"otp": str(refused)}
            audit("signin_failed", reason="code_invalid", client=client_address(self))
            yield focus_first(self.field_errors)
            return
        except SQLAlchemyError:
            log.exception("verification code not checked: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        self._done()
        yield rx.toast.success(CONFIRMED)
        yield await sign_in(self, user, "email_code")

    @requires(ANYONE)
    async def send_again(self) -> AsyncIterator[Events]:
        """Send the screen's mail once more (a new link and code replace the old ones)."""
        pending = self._pending_now()
        self.form_error = self.notice = ""
        if pending is None:
            self.form_error = NO_PENDING
            return
        if self.busy:
            return
        self.busy = True
        yield None
        try:
            mail = await asyncio.to_thread(recovery.mail_again, pending, make_account_limits())
        except recovery.Throttled as refused:
            self.form_error = str(refused)
            self.busy = False
            audit("throttled", reason="mail", client=client_address(self))
            return
        except SQLAlchemyError:
            log.exception("verification mail not issued: database error")
            self.form_error = MAIL_FAILED
            self.busy = False
            return
        self.notice = "We sent you a new email. Links and codes of earlier ones no longer work."
        await self._deliver(mail)
