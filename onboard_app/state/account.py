"""Account settings on ``/settings``: the email address, the password, deleting the account.

Thin: each handler unpacks its form, calls :mod:`onboard_app.services.account_settings`
off the event loop (the password ones in the hash pool), and shows the answer. Every
handler is declared with its rule; the user is always the verified session's, never
anything the client sends. Passwords are never kept in state: a refused form keeps what
was typed in the browser (forms are not reset), and its errors are tied to the fields.

Where the link confirming a new address lands (``/confirm-email``) is open to anyone:
opened where the account is signed in, the change re-mints that tab's token from the
updated row; opened elsewhere, the link alone makes the change (it proves the new
address) and the page says to log in with it.

An account without a password deletes itself after a fresh sign-in with its provider:
the OAuth round trip starts here, comes back to the provider's callback page
(``OAuthState.complete_login`` hands a re-authentication over to
:func:`continue_reauthentication`), and :meth:`DeleteAccountState.finish_reauthentication`
checks the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import reflex as rx
from reflex.event import EventSpec
from reflex.state import BaseState
from sqlalchemy.exc import SQLAlchemyError

from onboard_app import routes
from onboard_app.models import User
from onboard_app.services import account_mail, oauth, passwords
from onboard_app.services import account_settings as core
from onboard_app.services import mail as mail_service
from onboard_app.services.access import ANYONE, COMPLETED
from onboard_app.services.account_limits import make_account_limits
from onboard_app.services.audit import audit
from onboard_app.services.email_links import REFUSAL_MESSAGES, Refusal
from onboard_app.services.mail import MAIL_FAILED, Mail, MailFailed
from onboard_app.services.recovery import LinkRefused, Throttled
from onboard_app.services.sessions import Authenticated
from onboard_app.services.text import safe_text
from onboard_app.services.throttle import make_throttle
from onboard_app.services.users import UserGone
from onboard_app.settings import get_settings
from onboard_app.state.auth import (
    FORGET_LINK_TOKEN,
    MAX_FIELD,
    AuthFormState,
    client_address,
    form_field,
)
from onboard_app.state.oauth import OAuthState
from onboard_app.state.session import (
    OUTAGE_MESSAGE,
    Events,
    SessionState,
    SessionUnavailable,
    requires,
    verified_session,
)

log = logging.getLogger("onboard.account")

#: The element id of each field, as the section forms draw them (errors focus them).
EMAIL_FIELDS: Final = {core.NEW_EMAIL: "new-email", core.CURRENT_PASSWORD: "email-password"}
CODE_FIELDS: Final = {core.CODE: "email-code"}
PASSWORD_FIELDS: Final = {core.CURRENT_PASSWORD: "current-password", "password": "new-password"}
DELETE_FIELDS: Final = {core.CONFIRM: "delete-confirm", core.CURRENT_PASSWORD: "delete-password"}

PASSWORD_CHANGED: Final = "Your password has been changed. Every other device is signed out."  # noqa: S105
CHANGE_CANCELLED: Final = "The email change is cancelled. Your address stays the same."
PROVIDER_UNAVAILABLE: Final = (
    "Signing in with {provider} is not possible right now, so we cannot confirm it is you. "
    "Please try again later."
)


def focus_field(errors: dict[str, str], ids: dict[str, str]) -> EventSpec | None:
    """Move the focus to the first field of a section (in ``ids`` order) with an error."""
    first = next((ids[name] for name in ids if name in errors), None)
    return rx.set_focus(first) if first else None


def _signed_out() -> EventSpec:
    return rx.redirect(routes.login_with_next(routes.SETTINGS), replace=True)


async def _signed_in(state: BaseState) -> Authenticated | None:
    """The verified session of this event, or ``None`` (the account is gone: sign out)."""
    session = verified_session()
    if session is None:
        await (await state.get_state(SessionState))._forget()
    return session


async def _submitting(
    state: EmailChangeState | PasswordChangeState | DeleteAccountState,
) -> tuple[Authenticated | None, Events]:
    """Start a form's submit: errors cleared, the busy flag set, the verified session.

    Returns:
        The session, or ``None`` and what to answer instead (nothing while the form is
        busy already; the login page when the account is gone).
    """
    state.form_error, state.field_errors = "", {}
    if state.busy:
        return None, None
    session = await _signed_in(state)
    if session is None:
        return None, _signed_out()
    state.busy = True
    return session, None


class AccountState(rx.State):
    """What the account sections show, read from the database when they appear."""

    loaded: bool = False
    email: str = ""
    has_password: bool = False
    #: ``github`` or ``oidc`` for an account without a password.
    provider: str = ""
    #: How the page names that provider (``GitHub``, the OIDC button's words).
    provider_name: str = ""
    #: The address an email change waits to be confirmed for.
    pending_email: str = ""

    def _show(self, account: core.Account) -> None:
        self.email = account.email or ""
        self.has_password = account.has_password
        self.provider = account.provider or ""
        self.provider_name = core.provider_name(account.provider) if account.provider else ""
        self.pending_email = account.pending_email or ""
        self.loaded = True

    async def _reload(self, user_id: int) -> None:
        self._show(await asyncio.to_thread(core.account, user_id))

    @requires(COMPLETED)
    async def load(self) -> Events:
        """When the sections appear: the account as the database has it now."""
        session = verified_session()
        if session is None:
            return _signed_out()
        try:
            await self._reload(session.user.id)
        except SQLAlchemyError:
            log.exception("account settings not loaded: database error")
            return rx.toast.error(OUTAGE_MESSAGE)
        except UserGone:
            return _signed_out()
        return None


async def _send_first(state: BaseState, mails: list[Mail]) -> bool:
    """Send the first mail (what the screen promised); the others are notices only."""
    result = await mail_service.send_async(mails[0])
    for notice in mails[1:]:
        # A notice's failure is logged (mail.send) and changes nothing here.
        await mail_service.send_async(notice)
    return not isinstance(result, MailFailed)


class EmailChangeState(AccountState):
    """The "Email" section: ask for a change, type its code, or cancel it."""

    #: What was typed as the new address (kept after a refusal).
    new_email: str = ""
    form_error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False

    def _refused(self, errors: dict[str, str], ids: dict[str, str]) -> EventSpec | None:
        self.field_errors = errors
        return focus_field(errors, ids)

    @requires(COMPLETED)
    async def request_change(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Mail a link and a code to the new address; tell the old one.

        The answer is the same whether or not the new address has an account.

        Args:
            form: The submitted form (``new_email``, ``current_password``).
        """
        address, password = form_field(form, "new_email"), form_field(form, "current_password")
        self.new_email = safe_text(address, max_chars=MAX_FIELD)
        session, answer = await _submitting(self)
        if session is None:
            yield answer
            return
        yield None  # the busy flag reaches the browser before the work starts
        settings = get_settings()
        client = client_address(self)
        try:
            new_email, mails = await passwords.in_hash_pool(
                core.request_email_change,
                session.user.id,
                address,
                password,
                client,
                make_throttle(settings),
                make_account_limits(settings),
            )
        except core.WrongPassword as wrong:
            audit("reauth_failed", user_id=session.user.id, reason="wrong_password", client=client)
            yield self._refused(wrong.errors, EMAIL_FIELDS)
            return
        except core.FormErrors as problem:
            yield self._refused(problem.errors, EMAIL_FIELDS)
            return
        except Throttled as refused:
            self.form_error = str(refused)
            audit("throttled", user_id=session.user.id, reason="password", client=client)
            return
        except (core.NoPassword, UserGone):
            await self._reload(session.user.id)
            return
        except SQLAlchemyError:
            log.exception("email change not issued: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        audit("email_change_requested", user_id=session.user.id, client=client)
        self.pending_email, self.new_email = new_email, ""
        yield rx.set_focus("email-code")
        if not await _send_first(self, mails):
            self.form_error = MAIL_FAILED

    @requires(COMPLETED)
    async def confirm_code(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Make the pending change with the code of its mail; re-mint this tab's token.

        Args:
            form: The submitted form (``code``).
        """
        code = form_field(form, "code")
        session, answer = await _submitting(self)
        if session is None:
            yield answer
            return
        yield None
        try:
            user = await asyncio.to_thread(
                core.confirm_with_code,
                code,
                session.user.id,
                session.user.email or f"user:{session.user.id}",
                make_account_limits(),
            )
        except core.FormErrors as problem:
            yield self._refused(problem.errors, CODE_FIELDS)
            return
        except LinkRefused as refused:
            audit("reauth_failed", user_id=session.user.id, reason="change_code_invalid")
            yield self._refused({core.CODE: str(refused)}, CODE_FIELDS)
            return
        except Throttled as refused:
            self.form_error = str(refused)
            audit("throttled", user_id=session.user.id, reason="code", client=client_address(self))
            return
        except core.EmailUnavailable:
            self.form_error = core.EMAIL_NOW_TAKEN
            await self._reload(session.user.id)
            return
        except SQLAlchemyError:
            log.exception("email change not made: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        yield await _changed(self, session, user, "code")

    @requires(COMPLETED)
    async def cancel_change(self) -> Events:
        """Drop the pending change: its link and code stop working."""
        session = await _signed_in(self)
        if session is None:
            return _signed_out()
        self.form_error, self.field_errors = "", {}
        try:
            await asyncio.to_thread(core.cancel_email_change, session.user.id)
            await self._reload(session.user.id)
        except SQLAlchemyError:
            log.exception("email change not cancelled: database error")
            self.form_error = OUTAGE_MESSAGE
            return None
        return [rx.toast.info(CHANGE_CANCELLED), rx.set_focus("new-email")]


async def _changed(state: BaseState, session: Authenticated, user: User, method: str) -> EventSpec:
    """The change is made: this tab's token from the updated row, and the sections anew."""
    audit("email_changed", user_id=user.id, method=method, client=client_address(state))
    session_state = await state.get_state(SessionState)
    session_state._remint_from(session, user)
    account = await state.get_state(AccountState)
    assert user.id is not None
    await account._reload(user.id)
    return rx.toast.success(f"Your email address is now {user.email}.")


class ConfirmEmailState(rx.State):
    """``/confirm-email``: where the link of an email change lands."""

    busy: bool = False
    #: The account's address now, once the change is made.
    changed_to: str = ""
    error: str = ""

    @requires(ANYONE)
    async def open_link(self) -> AsyncIterator[Events]:
        """``on_load``: use the link once; where its account is signed in, stay signed in."""
        self.changed_to, self.error = "", ""
        token = routes.link_token(self.router.url.fragment)
        if token is None:
            self.error = REFUSAL_MESSAGES[Refusal.INVALID]
            return
        yield FORGET_LINK_TOKEN
        try:
            session = verified_session()
        except SessionUnavailable:
            self.error = OUTAGE_MESSAGE
            return
        self.busy = True
        yield None
        try:
            user = await asyncio.to_thread(
                core.confirm_with_token, token, session.user.id if session else None
            )
        except LinkRefused as refused:
            self.error = str(refused)
            return
        except core.EmailUnavailable:
            self.error = core.EMAIL_NOW_TAKEN
            return
        except SQLAlchemyError:
            log.exception("email change link not used: database error")
            self.error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        if session is None:
            audit("email_changed", user_id=user.id, method="link", client=client_address(self))
            self.changed_to = user.email or ""
            return
        yield [await _changed(self, session, user, "link"), rx.redirect(routes.SETTINGS)]


class PasswordChangeState(AuthFormState):
    """The "Password" section: the current password, a new one with the strength meter.

    The new password's error is kept under ``password`` (as the other password forms
    do), so the meter's rating clears or updates it as the user types.
    """

    @requires(COMPLETED)
    async def rate_password(self, password: str) -> None:
        """The strength meter, as the new password is typed (debounced in the page).

        Args:
            password: The new password typed so far.
        """
        session = verified_session()
        if session is not None:
            await self._rate(password, session.user.email, session.user.display_name)

    @requires(COMPLETED)
    async def change_password(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Replace the password; every other session of the account ends, this one stays.

        Args:
            form: The submitted form (``current_password``, ``new_password``).
        """
        current, new = form_field(form, "current_password"), form_field(form, "new_password")
        session, answer = await _submitting(self)
        if session is None:
            yield answer
            return
        yield None  # the busy flag reaches the browser before the work starts
        client = client_address(self)
        try:
            user = await passwords.in_hash_pool(
                core.change_password,
                session.user.id,
                current,
                new,
                session.session_id,
                client,
                make_throttle(get_settings()),
            )
        except core.FormErrors as problem:
            if isinstance(problem, core.WrongPassword):
                audit("reauth_failed", user_id=session.user.id, reason="wrong_password")
            errors = {
                ("password" if name == core.NEW_PASSWORD else name): message
                for name, message in problem.errors.items()
            }
            yield self._refuse_fields(errors)
            return
        except Throttled as refused:
            self.form_error = str(refused)
            audit("throttled", user_id=session.user.id, reason="password", client=client)
            return
        except (core.NoPassword, UserGone):
            return
        except SQLAlchemyError:
            log.exception("password not changed: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        audit("password_changed", user_id=user.id, client=client)
        self._clear()
        (await self.get_state(SessionState))._remint_from(session, user)
        yield [
            rx.toast.success(PASSWORD_CHANGED),
            rx.call_script("document.getElementById('account-password')?.reset()"),
        ]
        if user.email:
            await mail_service.send_async(account_mail.password_changed(user.email))

    def _refuse_fields(self, errors: dict[str, str]) -> EventSpec | None:
        self.field_errors = errors
        return focus_field(errors, PASSWORD_FIELDS)


class DeleteAccountState(AccountState):
    """The "Delete account" section, and what the goodbye page says."""

    form_error: str = ""
    field_errors: dict[str, str] = {}
    busy: bool = False
    #: Set once the account is gone (after every other var was cleared): the goodbye page.
    farewell_email: str = ""
    farewell_mail_failed: bool = False
    #: A re-authentication handed over by the provider's callback page (one-time).
    _reauth: dict[str, Any] | None = None

    @requires(COMPLETED)
    async def delete_account(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Delete the account after the typed confirmation and the current password.

        An account without a password is sent to its provider to sign in again first.

        Args:
            form: The submitted form (``confirm``, and ``current_password``).
        """
        typed, password = form_field(form, "confirm"), form_field(form, "current_password")
        session, answer = await _submitting(self)
        if session is None:
            yield answer
            return
        yield None  # the busy flag reaches the browser before the work starts
        client = client_address(self)
        try:
            account = await asyncio.to_thread(core.account, session.user.id)
            if not account.has_password:
                yield await self._to_provider(account, typed)
                return
            deleted = await passwords.in_hash_pool(
                core.delete_with_password,
                session.user.id,
                password,
                typed,
                client,
                make_throttle(get_settings()),
            )
        except core.FormErrors as problem:
            if isinstance(problem, core.WrongPassword):
                audit("reauth_failed", user_id=session.user.id, reason="wrong_password")
            self.field_errors = problem.errors
            yield focus_field(problem.errors, DELETE_FIELDS)
            return
        except Throttled as refused:
            self.form_error = str(refused)
            audit("throttled", user_id=session.user.id, reason="password", client=client)
            return
        except UserGone:
            yield _signed_out()
            return
        except SQLAlchemyError:
            log.exception("account not deleted: database error")
            self.form_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        async for event in self._farewell(deleted, "password"):
            yield event

    async def _to_provider(self, account: core.Account, typed: str) -> Events:
        """Start the fresh sign-in with the account's provider (after the confirmation)."""
        problem = core.confirm_problem(typed)
        if problem:
            self.field_errors = {core.CONFIRM: problem}
            return focus_field(self.field_errors, DELETE_FIELDS)
        settings = get_settings()
        client = oauth.provider_settings(settings, account.provider)
        name = core.provider_name(account.provider or "")
        if client is None:
            self.form_error = PROVIDER_UNAVAILABLE.format(provider=name)
            return None
        try:
            url, pending = await oauth.begin(
                client,
                settings.oauth_callback_url(client.name),
                reauthenticate=account.user_id,
            )
        except oauth.OAuthError as failure:
            log.warning("re-authentication with %s could not start: %s", client.name, failure.code)
            self.form_error = PROVIDER_UNAVAILABLE.format(provider=name)
            return None
        (await self.get_state(OAuthState))._pending = pending.to_dict()
        # Same tab: the callback finds the pending login in this tab's state.
        return rx.redirect(url)

    @requires(COMPLETED)
    async def finish_reauthentication(self) -> AsyncIterator[Events]:
        """On the callback page: the provider's answer, then the deletion it allows."""
        pending = oauth.PendingLogin.from_dict(self._reauth)
        self._reauth = None  # one-time, whatever happens next
        session = await _signed_in(self)
        if session is None:
            yield _signed_out()
            return
        settings = get_settings()
        client = oauth.provider_settings(settings, pending.provider if pending else None)
        if pending is None or client is None or pending.user_id != session.user.id:
            yield rx.redirect(routes.SETTINGS, replace=True)
            return
        self.busy = True
        yield None
        try:
            identity = await oauth.complete(
                client,
                pending,
                dict(self.router.url.query_parameters),
                settings.oauth_callback_url(client.name),
            )
            deleted = await asyncio.to_thread(
                core.delete_after_reauthentication, session.user.id, identity
            )
        except oauth.OAuthError as failure:
            audit("reauth_failed", user_id=session.user.id, reason=failure.code, method=client.name)
            self.form_error = f"We could not confirm it is you. {failure.message}"
            yield rx.redirect(routes.SETTINGS, replace=True)
            return
        except core.FormErrors as problem:
            audit("reauth_failed", user_id=session.user.id, reason="not_proven", method=client.name)
            self.form_error = problem.errors.get("form", core.NOT_RECENT)
            yield rx.redirect(routes.SETTINGS, replace=True)
            return
        except (SQLAlchemyError, UserGone):
            log.exception("account not deleted after re-authentication: database error")
            self.form_error = OUTAGE_MESSAGE
            yield rx.redirect(routes.SETTINGS, replace=True)
            return
        finally:
            self.busy = False
        async for event in self._farewell(deleted, client.name):
            yield event

    async def _farewell(self, deleted: core.Deleted, method: str) -> AsyncIterator[Events]:
        """The account is gone: sign this tab out, land on the goodbye page, mail the owner."""
        audit(
            "account_deleted", user_id=deleted.user_id, method=method, client=client_address(self)
        )
        await (await self.get_state(SessionState))._forget()
        self.farewell_email = deleted.email or ""
        yield rx.redirect(routes.ACCOUNT_DELETED, replace=True)
        mail = core.deleted_mail(deleted)
        if mail is not None:
            result = await mail_service.send_async(mail)
            self.farewell_mail_failed = isinstance(result, MailFailed)


async def continue_reauthentication(state: BaseState, pending: oauth.PendingLogin) -> EventSpec:
    """Hand a re-authentication the callback page received over to the deletion.

    Called by ``OAuthState.complete_login`` with the pending login it has just dropped.

    Args:
        state: The callback page's state.
        pending: The re-authentication started by :meth:`DeleteAccountState.delete_account`.

    Returns:
        The event that checks the provider's answer (on this page, with its query).
    """
    (await state.get_state(DeleteAccountState))._reauth = pending.to_dict()
    return DeleteAccountState.finish_reauthentication()
