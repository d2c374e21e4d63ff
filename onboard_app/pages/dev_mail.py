"""``/dev/mail``: the development mailbox (registered in development only)."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from onboard_app import routes
from onboard_app.components.layout import brand
from onboard_app.state.dev_mail import DevMailboxState


def _entry(mail: ObjectVar[dict[str, str]]) -> rx.Component:
    opened = DevMailboxState.opened_id == mail["id"]
    return rx.el.li(
        rx.button(
            rx.vstack(
                rx.text(mail["subject"], weight="medium", size="2", align="left"),
                rx.text(mail["to"], size="1", color_scheme="gray"),
                rx.text(mail["created_at"], size="1", color_scheme="gray"),
                spacing="0",
                align="start",
                width="100%",
            ),
            on_click=DevMailboxState.open_mail(mail["id"]),
            variant=rx.cond(opened, "soft", "ghost"),
            aria_current=rx.cond(opened, "true", "false"),
            height="auto",
            width="100%",
            margin="0",
            padding="0.5rem 0.75rem",
            justify="start",
            class_name="dev-mail-entry",
        ),
        list_style="none",
    )


def _opened() -> rx.Component:
    state = DevMailboxState
    return rx.vstack(
        rx.heading(state.opened_subject, size="4", as_="h2"),
        rx.text("From ", state.opened_from, size="1", color_scheme="gray"),
        rx.text("To ", rx.text.strong(state.opened_to), size="2"),
        rx.cond(
            state.opened_link,
            rx.link(
                rx.hstack(
                    rx.icon("external-link", size=14), "Open the link", align="center", spacing="1"
                ),
                href=state.opened_link,
                id="dev-mail-link",
                weight="medium",
            ),
        ),
        rx.el.iframe(
            src_doc=state.opened_html,
            # No scripts, no access to this page; links open in a new tab, unsandboxed.
            sandbox="allow-popups allow-popups-to-escape-sandbox",
            referrer_policy="no-referrer",
            title="The email as HTML",
            width="100%",
            height="480px",
            border="1px solid var(--gray-6)",
            border_radius="6px",
            background="white",
        ),
        rx.el.details(
            rx.el.summary("Plain-text version", font_size="14px", cursor="pointer"),
            rx.el.pre(
                state.opened_text,
                white_space="pre-wrap",
                word_break="break-word",
                font_size="13px",
                margin_top="0.5rem",
            ),
            width="100%",
        ),
        spacing="3",
        width="100%",
        min_width="0",
    )


def dev_mailbox_page() -> rx.Component:
    """The mails written to the development mailbox, newest first."""
    state = DevMailboxState
    return rx.box(
        rx.vstack(
            rx.hstack(
                rx.link(brand("5"), href=routes.HOME, underline="none", color="inherit"),
                rx.badge("development", color_scheme="orange", variant="soft"),
                rx.spacer(),
                rx.button(
                    rx.icon("refresh-cw", size=14), "Refresh", on_click=state.load, variant="soft"
                ),
                rx.button(
                    rx.icon("trash-2", size=14),
                    "Clear",
                    on_click=state.clear,
                    variant="soft",
                    color_scheme="red",
                    id="dev-mail-clear",
                ),
                align="center",
                width="100%",
                wrap="wrap",
            ),
            rx.heading("Development mailbox", size="6", as_="h1"),
            rx.text(
                "Mails the app would have sent, kept in ONBOARD_MAIL_DIR (.onboard/mail/ by "
                "default). This page exists in development only.",
                size="2",
                color_scheme="gray",
            ),
            rx.cond(
                state.smtp_configured,
                rx.callout(
                    "An SMTP server is configured (ONBOARD_SMTP_URL): mails go there instead.",
                    icon="info",
                    width="100%",
                ),
            ),
            rx.cond(
                state.mails,
                rx.flex(
                    rx.el.ul(
                        rx.foreach(state.mails, _entry),
                        aria_label="Mails, newest first",
                        padding="0",
                        margin="0",
                        width=["100%", "100%", "300px"],
                        flex_shrink="0",
                        display="flex",
                        flex_direction="column",
                        gap="2px",
                    ),
                    rx.card(_opened(), width="100%", min_width="0"),
                    direction=rx.breakpoints(initial="column", md="row"),
                    gap="1rem",
                    width="100%",
                    align="start",
                ),
                rx.card(
                    rx.text("No mail yet. Sign up or ask for a password reset, then refresh."),
                    width="100%",
                ),
            ),
            spacing="4",
            width="100%",
            max_width="1100px",
            margin_x="auto",
        ),
        padding="1.5rem 1rem",
        min_height="100vh",
        background="var(--gray-2)",
    )
