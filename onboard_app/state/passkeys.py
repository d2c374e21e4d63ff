"""Passkeys: "Sign in with a passkey" on the login page, and the "Passkeys" section of settings.

A ceremony is two events. The first makes the options on the server, keeps the challenge
in a backend-only var of this tab (``_challenge``) and answers with the browser half
(``passkeys.js``, run by ``rx.call_script``), which calls ``navigator.credentials`` and
hands the result to the second event. That one takes the challenge out of the state
before anything else (a challenge answers once) and lets :mod:`onboard_app.services.passkeys`
check the response against it: a response to a challenge another tab was given does not
match this tab's.

A passkey is added only after the user proved again who they are, in this tab, for this
sign-in: the password for a password account (counted like a login), and for an account
without one (GitHub, OpenID Connect) a sign-in of at most :data:`RECENT_SIGN_IN` seconds
ago; an older one is asked to sign out and sign in again. That proof lasts
:data:`REAUTH_TTL` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import reflex as rx
from reflex.event import EventSpec
from sqlalchemy.exc import SQLAlchemyError

from onboard_app.services import account_mail, accounts, passkeys, passwords, users
from onboard_app.services.access import ANYONE, COMPLETED
from onboard_app.services.account_settings import WRONG_PASSWORD
from onboard_app.services.audit import audit
from onboard_app.services.passkeys import Challenge, PasskeyRefused
from onboard_app.services.sessions import Authenticated
from onboard_app.services.text import TextRefused
from onboard_app.services.throttle import make_throttle
from onboard_app.services.user_agents import parse_user_agent
from onboard_app.settings import get_settings
from onboard_app.state.auth import client_address, form_field, sign_in
from onboard_app.state.session import OUTAGE_MESSAGE, Events, requires, verified_session

log = logging.getLogger("onboard.passkeys")

#: A password confirmation lets this tab add passkeys for this long (seconds).
REAUTH_TTL: Final = 300
#: An account without a password may add a passkey this soon after signing in (seconds).
RECENT_SIGN_IN: Final = 300
#: The id of the password field of the confirmation dialog.
PASSWORD_FIELD: Final = "passkey-password"  # noqa: S105 (an element id)

_SCRIPT: Final = Path(__file__).with_name("passkeys.js").read_text(encoding="utf-8").strip()
#: What the browser's refusals mean to the user (by the DOMException's name).
BROWSER_ERRORS: Final = {
    "NotAllowedError": "The passkey request was cancelled or timed out.",
    "AbortError": "The passkey request was cancelled or timed out.",
    "InvalidStateError": "This device holds a passkey for your account already.",
    "NotSupportedError": "This browser cannot use passkeys.",
    "SecurityError": "Passkeys do not work at this address. Open Onboard at its usual address.",
}
#: How a passkey sign-in is named (audit lines, the two-factor step).
PASSKEY: Final = "passkey"
PASSKEY_UNVERIFIED: Final = "passkey_unverified"
SOMETHING_WRONG: Final = "Something went wrong with the passkey. Try again."
ENTER_PASSWORD: Final = "Enter your password."  # noqa: S105 (a message)
ADDED: Final = "Passkey added. Next time, choose “Sign in with a passkey”."


def ceremony(kind: str, options: str, callback: rx.EventHandler) -> EventSpec:
    """The browser half of a ceremony: ``navigator.credentials.<kind>`` with ``options``.

    Args:
        kind: ``create`` or ``get``.
        options: The options as JSON (made by the server: safe to embed as a literal).
        callback: The handler that receives ``{credential: ...}`` or ``{error: ...}``.

    Returns:
        The ``rx.call_script`` event.
    """
    return rx.call_script(f"({_SCRIPT})({json.dumps(kind)}, {options})", callback=callback)


def browser_outcome(result: object) -> dict[str, Any] | str:
    """The credential the browser sent, or the message for what went wrong there.

    Args:
        result: What the page script resolved to (any value a client can send).

    Returns:
        The credential (a dict, still unchecked), or a message for the user.
    """
    if isinstance(result, dict) and isinstance(result.get("credential"), dict):
        return result["credential"]
    error = result.get("error") if isinstance(result, dict) else None
    return BROWSER_ERRORS.get(error, SOMETHING_WRONG) if isinstance(error, str) else SOMETHING_WRONG


class PasskeyLoginState(rx.State):
    """The login page's "Sign in with a passkey"."""

    busy: bool = False
    error: str = ""
    #: The challenge this tab was given (``Challenge.to_dict``), until it is answered.
    _challenge: dict[str, Any] | None = None

    @requires(ANYONE)
    def start_sign_in(self) -> EventSpec:
        """Ask the browser for any passkey of this site, for a new one-time challenge."""
        started = passkeys.authentication_options()
        self._challenge = started.challenge.to_dict()
        self.busy, self.error = True, ""
        return ceremony("get", started.options, PasskeyLoginState.finish_sign_in)

    @requires(ANYONE)
    async def finish_sign_in(self, result: dict[str, Any]) -> AsyncIterator[Events]:
        """Check the browser's answer against this tab's challenge; sign its user in.

        Args:
            result: What the page script resolved to.
        """
        challenge = Challenge.from_dict(self._challenge)
        self._challenge = None  # one-time, whatever happens next
        credential = browser_outcome(result)
        if isinstance(credential, str):
            self.busy, self.error = False, credential
            return
        self.busy = True
        yield None
        try:
            signed_in = await asyncio.to_thread(passkeys.authenticate, challenge, credential)
        except PasskeyRefused as refused:
            audit(
                "signin_failed",
                reason=f"passkey_{refused.reason}",
                method="passkey",
                client=client_address(self),
            )
            self.error = str(refused)
            return
        except SQLAlchemyError:
            log.exception("passkey sign-in not checked: database error")
            self.error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        user = signed_in.user
        if accounts.needs_verification(user):
            # Passkeys are added only by confirmed accounts; never a way around confirming.
            client = client_address(self)
            audit("signin_failed", user_id=user.id, reason="unconfirmed", client=client)
            self.error = passkeys.NOT_ACCEPTED
            return
        # A verified user makes the passkey two factors by itself (no code asked after it);
        # a passkey used without it counts as one, like a password.
        yield await sign_in(self, user, PASSKEY if signed_in.user_verified else PASSKEY_UNVERIFIED)


@dataclass
class PasskeyRow:
    """One passkey as the settings page lists it."""

    id: int
    name: str
    added: str
    last_used: str


def _day(moment: datetime | None) -> str:
    return f"{moment.day} {moment:%b %Y}" if moment else ""


class PasskeySettingsState(rx.State):
    """The "Passkeys" section of ``/settings``: list, add, rename, remove."""

    rows: list[PasskeyRow] = []
    loaded: bool = False
    busy: bool = False
    error: str = ""
    #: The dialog that asks the user to prove who they are before adding a passkey.
    confirming: bool = False
    #: In that dialog: a password to type (else: sign in again with the provider).
    has_password: bool = True
    password_error: str = ""
    renaming_id: int = 0
    rename_error: str = ""
    removing_id: int = 0
    _challenge: dict[str, Any] | None = None
    #: This tab's proof (``user_id``, ``auth_time`` of the session, ``until``).
    _reauthenticated: dict[str, Any] | None = None

    @rx.var
    def renaming_name(self) -> str:
        """The current name of the passkey being renamed."""
        return next((row.name for row in self.rows if row.id == self.renaming_id), "")

    @rx.var
    def removing_name(self) -> str:
        """The name of the passkey about to be removed."""
        return next((row.name for row in self.rows if row.id == self.removing_id), "")

    @requires(COMPLETED)
    async def load(self) -> None:
        """Show the user's passkeys (``on_mount`` of the section)."""
        session = verified_session()
        assert session is not None
        self._challenge = None  # a page (re)loaded: no ceremony of an earlier one is running
        self.busy = False
        await self._reload(session)

    async def _reload(self, session: Authenticated) -> None:
        try:
            found = await asyncio.to_thread(passkeys.list_passkeys, session.user.id)
        except SQLAlchemyError:
            log.exception("passkeys of user %s not listed: database error", session.user.id)
            self.error = OUTAGE_MESSAGE
            return
        self.rows = [
            PasskeyRow(p.id, p.name, _day(p.created_at), _day(p.last_used_at)) for p in found
        ]
        self.loaded = True

    def _proven(self, session: Authenticated) -> bool:
        proof = self._reauthenticated or {}
        return (
            proof.get("user_id") == session.user.id
            and proof.get("auth_time") == session.claims.auth_time
            and float(proof.get("until", 0)) > time.time()
        )

    @requires(COMPLETED)
    async def begin_add(self) -> AsyncIterator[Events]:
        """Start adding a passkey: at once if proven, else ask the user to confirm who they are."""
        session = verified_session()
        assert session is not None
        pending = Challenge.from_dict(self._challenge)
        if pending is not None and pending.expires_at > time.time():
            return  # the browser is creating one (a second click)
        self.error = self.password_error = ""
        if self._proven(session):
            yield await self._start_registration(session)
            return
        try:
            user = await asyncio.to_thread(users.get_user, session.user.id)
        except SQLAlchemyError:
            log.exception("user %s not read: database error", session.user.id)
            self.error = OUTAGE_MESSAGE
            return
        if user is None:
            return
        self.has_password = user.password_hash is not None
        if not self.has_password and time.time() - session.claims.auth_time <= RECENT_SIGN_IN:
            self._prove(session)
            yield await self._start_registration(session)
            return
        self.confirming = True

    def _prove(self, session: Authenticated) -> None:
        self._reauthenticated = {
            "user_id": session.user.id,
            "auth_time": session.claims.auth_time,
            "until": time.time() + REAUTH_TTL,
        }

    @requires(COMPLETED)
    async def confirm_password(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """The confirmation dialog's password: right, and the browser makes the passkey.

        Counted on the login throttle like a login (so a stolen session cannot guess it).

        Args:
            form: The submitted form (``password``).
        """
        session = verified_session()
        assert session is not None
        password = form_field(form, "password")
        if not password:
            self.password_error = ENTER_PASSWORD
            yield rx.set_focus(PASSWORD_FIELD)
            return
        if self.busy or not session.user.email:
            return
        self.busy, self.password_error = True, ""
        yield None
        try:
            user = await passwords.in_hash_pool(
                accounts.log_in,
                session.user.email,
                password,
                client_address(self),
                make_throttle(get_settings()),
            )
        except accounts.LoginFailed as failure:
            wrong = str(failure) == accounts.LOGIN_FAILED
            self.password_error = WRONG_PASSWORD if wrong else str(failure)
            audit(
                "reauth_failed",
                user_id=session.user.id,
                reason="wrong_password" if wrong else "throttled",
                method="passkey",
                client=client_address(self),
            )
            yield rx.set_focus(PASSWORD_FIELD)
            return
        except SQLAlchemyError:
            log.exception("password of user %s not checked: database error", session.user.id)
            self.password_error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        if user.id != session.user.id:
            self.password_error = WRONG_PASSWORD
            return
        self._prove(session)
        self.confirming = False
        yield await self._start_registration(session)

    async def _start_registration(self, session: Authenticated) -> Events:
        try:
            started = await asyncio.to_thread(passkeys.registration_options, session.user.id)
        except PasskeyRefused as refused:
            self.error = str(refused)
            return None
        except (SQLAlchemyError, users.UserGone):
            log.exception("passkey options for user %s not made: database error", session.user.id)
            self.error = OUTAGE_MESSAGE
            return None
        self._challenge = started.challenge.to_dict()
        self.busy = True
        return ceremony("create", started.options, PasskeySettingsState.finish_add)

    @requires(COMPLETED)
    async def finish_add(self, result: dict[str, Any]) -> AsyncIterator[Events]:
        """Check the browser's new passkey against this tab's challenge and keep it.

        Args:
            result: What the page script resolved to.
        """
        session = verified_session()
        assert session is not None
        challenge = Challenge.from_dict(self._challenge)
        self._challenge = None  # one-time, whatever happens next
        credential = browser_outcome(result)
        if isinstance(credential, str):
            self.busy, self.error = False, credential
            return
        if not self._proven(session):
            self.busy, self.error = False, passkeys.TRY_AGAIN
            return
        name = parse_user_agent(self.router.headers.user_agent or "").label
        try:
            added = await asyncio.to_thread(
                passkeys.register, session.user.id, challenge, credential, name
            )
        except PasskeyRefused as refused:
            log.info("passkey of user %s refused: %s", session.user.id, refused.reason)
            self.error = str(refused)
            return
        except SQLAlchemyError:
            log.exception("passkey of user %s not stored: database error", session.user.id)
            self.error = OUTAGE_MESSAGE
            return
        finally:
            self.busy = False
        client = client_address(self)
        audit("passkey_added", user_id=session.user.id, credential=added.id, client=client)
        await self._reload(session)
        yield rx.toast.success(ADDED)
        await account_mail.send_security_notice(session.user.email, "passkey_added")

    @requires(COMPLETED)
    def start_rename(self, passkey_id: int) -> None:
        """Open the rename dialog for one of the listed passkeys (any other id: nothing).

        Args:
            passkey_id: The passkey's id, as listed.
        """
        if any(row.id == passkey_id for row in self.rows):
            self.renaming_id, self.rename_error = passkey_id, ""

    @requires(COMPLETED)
    async def rename(self, form: dict[str, Any]) -> AsyncIterator[Events]:
        """Rename the passkey of the open dialog (only ever one of the user's own).

        Args:
            form: The submitted form (``name``).
        """
        session = verified_session()
        assert session is not None
        name = passkeys.clean_name(form.get("name") if isinstance(form, dict) else None)
        if isinstance(name, TextRefused):
            self.rename_error = name.message
            yield rx.set_focus("passkey-name")
            return
        try:
            await asyncio.to_thread(
                passkeys.rename_passkey, session.user.id, self.renaming_id, name
            )
        except SQLAlchemyError:
            log.exception("passkey of user %s not renamed: database error", session.user.id)
            self.rename_error = OUTAGE_MESSAGE
            return
        self.renaming_id, self.rename_error = 0, ""
        await self._reload(session)
        yield rx.toast.success("Passkey renamed.")

    @requires(COMPLETED)
    def start_remove(self, passkey_id: int) -> None:
        """Ask whether to remove one of the listed passkeys (any other id: nothing).

        Args:
            passkey_id: The passkey's id, as listed.
        """
        if any(row.id == passkey_id for row in self.rows):
            self.removing_id = passkey_id

    @requires(COMPLETED)
    async def remove(self) -> AsyncIterator[Events]:
        """Remove the passkey the dialog asked about (only ever one of the user's own)."""
        session = verified_session()
        assert session is not None
        try:
            removed = await asyncio.to_thread(
                passkeys.remove_passkey, session.user.id, self.removing_id
            )
        except SQLAlchemyError:
            log.exception("passkey of user %s not removed: database error", session.user.id)
            self.error = OUTAGE_MESSAGE
            return
        finally:
            self.removing_id = 0
        if removed:
            audit("passkey_removed", user_id=session.user.id, client=client_address(self))
        await self._reload(session)
        yield rx.toast.success("Passkey removed. It no longer signs you in.")
        if removed:
            await account_mail.send_security_notice(session.user.email, "passkey_removed")

    @requires(COMPLETED)
    def close_dialog(self) -> None:
        """Close whichever dialog is open (Cancel, Escape, a click outside)."""
        self.confirming, self.renaming_id, self.removing_id = False, 0, 0
        self.password_error = self.rename_error = ""
