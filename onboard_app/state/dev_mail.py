"""The development mailbox page: the mails the app wrote instead of sending them.

Development only: the page is not registered in production, and its handlers' rule
(``development only``) refuses them there too. The mails come from
:func:`onboard_app.services.mail.list_mailbox`; a mail's HTML is shown in a sandboxed
frame (no scripts, no same-origin access), its links as plain links.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from onboard_app.services import mail
from onboard_app.services.access import DEVELOPMENT
from onboard_app.settings import get_settings
from onboard_app.state.session import requires


class DevMailboxState(rx.State):
    """The list of mails and the one opened."""

    mails: list[dict[str, str]] = []
    #: Mails go to an SMTP server instead (this mailbox stays empty).
    smtp_configured: bool = False
    opened_id: str = ""
    opened_subject: str = ""
    opened_to: str = ""
    opened_from: str = ""
    opened_link: str = ""
    opened_text: str = ""
    opened_html: str = ""

    @requires(DEVELOPMENT)
    async def load(self) -> None:
        """``on_load``: the newest mails; the newest one opened."""
        self.smtp_configured = get_settings().smtp is not None
        entries = await asyncio.to_thread(mail.list_mailbox)
        self.mails = [
            {
                "id": entry.id,
                "kind": entry.kind,
                "to": entry.to,
                "subject": entry.subject,
                "created_at": entry.created_at.replace("T", " ").removesuffix("+00:00") + " UTC",
                "link": entry.link or "",
            }
            for entry in entries
        ]
        if self.mails and self.opened_id not in {m["id"] for m in self.mails}:
            await self._open(self.mails[0]["id"])

    @requires(DEVELOPMENT)
    async def open_mail(self, mail_id: str) -> None:
        """Show one mail.

        Args:
            mail_id: Its id (checked by the mailbox before it names a file).
        """
        await self._open(mail_id)

    @requires(DEVELOPMENT)
    async def clear(self) -> None:
        """Delete every mail of the mailbox."""
        await asyncio.to_thread(mail.clear_mailbox)
        self.mails = []
        await self._open("")

    async def _open(self, mail_id: str) -> None:
        found = await asyncio.to_thread(mail.read_mailbox_mail, mail_id) if mail_id else None
        if found is None:
            self.opened_id = self.opened_subject = self.opened_to = self.opened_from = ""
            self.opened_link = self.opened_text = self.opened_html = ""
            return
        self.opened_id = found.entry.id
        self.opened_subject = found.entry.subject
        self.opened_to = found.entry.to
        self.opened_from = found.sender
        self.opened_link = found.entry.link or ""
        self.opened_text = found.text
        # Links of the sandboxed frame open in a new tab (never inside the frame).
        self.opened_html = found.html.replace("<head>", '<head><base target="_blank">', 1)
