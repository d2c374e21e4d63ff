"""Page frames: the centred card of the sign-in pages and the app shell with its navbar.

Every frame draws the app-wide style, a ``<main>`` landmark and at most one ``h1``. Toasts
belong to the page that raised them: a control that leaves the page dismisses them first
(:func:`dismiss_toasts`), and so does the browser's Back or Forward button.
"""

from __future__ import annotations

import reflex as rx
from reflex.components.radix.themes.components.dropdown_menu import DropdownMenuContent
from reflex.style import set_color_mode
from reflex_base.constants.compiler import MemoizationDisposition, MemoizationMode
from reflex_base.event import EventSpec
from reflex_base.utils.imports import ImportDict, ImportVar
from reflex_base.vars.base import Var

from onboard_app import routes
from onboard_app.components.deferred import after_first_paint
from onboard_app.state.session import SessionState

#: The width of the app's one grid: the navbar and the page content line up on it.
GRID_WIDTH = "1100px"
HEADER_ID = "site-header"


# Installed once per document: Back/Forward leaves a page without any control of ours.
_DISMISS_ON_HISTORY = (
    "if (!window.__onboardToastWatch) { window.__onboardToastWatch = true;"
    " window.addEventListener('popstate', () => refs['__toast']?.dismiss()); }"
)


class _MenuInHeader(DropdownMenuContent):
    """The user menu's content, opened inside the header landmark.

    Radix puts a menu at the end of ``<body>``, where its text belongs to no landmark. Its
    ``container`` is the header, found once the header is in the document (before that,
    and if it is missing, Radix falls back to ``<body>``). Its own memoized component
    holds that lookup: finding the header redraws the menu, not the whole page.
    """

    _memoization_mode = MemoizationMode(disposition=MemoizationDisposition.ALWAYS)

    def add_imports(self) -> ImportDict:
        return {"react": [ImportVar(tag="useEffect"), ImportVar(tag="useState")]}

    def add_hooks(self) -> list[str | Var]:
        return [
            "const [menuHome, setMenuHome] = useState(null);",
            f"useEffect(() => setMenuHome(document.getElementById('{HEADER_ID}')), []);",
        ]


def dismiss_toasts() -> EventSpec:
    """Dismiss every toast (in the browser, no round trip): chain it before leaving a page."""
    return rx.toast.dismiss()


def focus_on_mount(element_id: str) -> EventSpec:
    """Focus the element of that id (in the browser), e.g. a page's heading when it mounts.

    Focus waits for the frame being drawn to be painted: focusing lays the page out at
    once, so focusing in the commit would hold up the new page's first paint.
    """
    return rx.call_script(
        "requestAnimationFrame(() => setTimeout(() =>"
        f" document.getElementById('{element_id}')?.focus(), 0))"
    )


def page_heading(text: rx.Var | str, *, heading_id: str, size: str = "7") -> rx.Component:
    """The page's one ``h1``, focused when the page opens.

    A screen reader then announces the new page, and Tab continues from its top.
    """
    return rx.heading(
        text,
        size=size,
        as_="h1",
        id=heading_id,
        tab_index=-1,
        on_mount=focus_on_mount(heading_id),
    )


def brand(size: str = "6") -> rx.Component:
    """The Onboard logo and name (not a heading: the page's title is its one ``h1``)."""
    return rx.hstack(
        rx.image(src="/logo.svg", width="28px", height="28px", alt=""),
        rx.text("Onboard", as_="span", size=size, weight="bold"),
        align="center",
        spacing="2",
    )


def frame(*children: rx.Component) -> rx.Component:
    """What every page draws once: the toast watch (the app-wide rules are in onboard.css)."""
    return rx.fragment(
        rx.box(on_mount=rx.call_script(_DISMISS_ON_HISTORY), display="none"),
        *children,
    )


def loading(padding: str = "3rem") -> rx.Component:
    """A spinner across the width, where content is on its way."""
    return rx.center(rx.spinner(size="3"), padding=padding, width="100%")


def session_watch() -> rx.Component:
    """Sends this tab to the login page when another tab logs out (synced token gone)."""
    return rx.cond(
        SessionState.session_lost,
        rx.box(on_mount=SessionState.guard, display="none"),
    )


def auth_card(*children: rx.Component, title: str, subtitle: str) -> rx.Component:
    """A centred card for login and signup."""
    return frame(
        rx.el.main(
            rx.vstack(
                rx.link(
                    brand(),
                    href=routes.HOME,
                    underline="none",
                    color="inherit",
                ),
                rx.card(
                    rx.vstack(
                        rx.heading(title, size="6", as_="h1"),
                        rx.text(subtitle, color="var(--gray-11)", size="2"),
                        *children,
                        spacing="4",
                        width="100%",
                    ),
                    size=rx.breakpoints(initial="3", sm="4"),
                    width="100%",
                ),
                spacing="5",
                align="center",
                width="100%",
                max_width="420px",
            ),
            display="flex",
            justify_content="center",
            align_items="center",
            min_height="100vh",
            padding="1rem",
            background="var(--gray-2)",
        )
    )


def container(*children: rx.Component, **props: object) -> rx.Component:
    """A row of the app's grid: :data:`GRID_WIDTH` wide at most, centred, same insets."""
    return rx.box(
        *children,
        width="100%",
        max_width=GRID_WIDTH,
        margin_x="auto",
        padding_x=rx.breakpoints(initial="1rem", sm="1.5rem"),
        **props,
    )


def _account_summary() -> rx.Component:
    """Who is signed in, at the top of the user menu."""
    return rx.vstack(
        rx.text(SessionState.user_name, size="2", weight="medium", id="account-name"),
        rx.text(SessionState.user_email, size="1", color="var(--gray-11)", id="account-email"),
        spacing="0",
        padding_x="var(--space-3)",
        padding_y="var(--space-2)",
        max_width="260px",
        overflow_wrap="anywhere",
    )


def _account_button(**props: object) -> rx.Component:
    """The account's avatar, name (read out only on a phone) and a chevron, as a button."""
    return rx.button(
        rx.avatar(
            src=SessionState.user_avatar,
            fallback=SessionState.user_initials,
            size="1",
            radius="full",
            aria_hidden="true",
        ),
        rx.text(SessionState.user_name, size="2", class_name="phone-sr-only"),
        rx.icon("chevron-down", size=14, aria_hidden="true"),
        variant="soft",
        color_scheme="gray",
        radius="full",
        size="2",
        **props,
    )


def user_menu() -> rx.Component:
    """The account (avatar and name) with a menu: who is signed in, settings, log out."""
    return rx.menu.root(
        rx.menu.trigger(_account_button(id="user-menu")),
        _MenuInHeader.create(
            _account_summary(),
            rx.menu.separator(),
            rx.menu.item(
                rx.hstack(rx.icon("settings", size=14), rx.text("Settings"), align="center"),
                on_select=[dismiss_toasts(), rx.redirect(routes.SETTINGS)],
            ),
            rx.menu.separator(),
            rx.menu.item(
                rx.hstack(rx.icon("log-out", size=14), rx.text("Log out"), align="center"),
                on_select=[dismiss_toasts(), SessionState.log_out],
                color_scheme="red",
            ),
            align="end",
            custom_attrs={"container": Var(_js_expr="menuHome")},
        ),
        # Not modal: the page behind stays in the accessibility tree (a modal menu hides it
        # with aria-hidden while its links stay focusable).
        modal=False,
    )


def navbar() -> rx.Component:
    """Top bar of the signed-in app, on the same grid as the page content."""
    return rx.el.header(
        container(
            rx.hstack(
                rx.link(
                    brand("5"),
                    href=routes.EXPLORE,
                    underline="none",
                    color="inherit",
                    on_click=dismiss_toasts(),
                    class_name="tap",
                ),
                rx.spacer(),
                rx.cond(
                    SessionState.signed_in,
                    # The menu's machinery is set up right after the page's first frame,
                    # which shows the same button (inert) meanwhile.
                    after_first_paint(
                        user_menu(),
                        placeholder=rx.box(
                            _account_button(tab_index=-1),
                            aria_hidden="true",
                            custom_attrs={"inert": True},
                        ),
                    ),
                ),
                align="center",
                width="100%",
            ),
            padding_y="0.5rem",
        ),
        id=HEADER_ID,
        border_bottom="1px solid var(--gray-5)",
        background="var(--color-panel-solid)",
        position="sticky",
        top="0",
        z_index="10",
    )


def _apply_color_mode(mode: str) -> rx.Component:
    return rx.box(on_mount=set_color_mode(mode), display="none")  # type: ignore[arg-type]


def themed(*children: rx.Component) -> rx.Component:
    """Children drawn in the signed-in user's theme preference.

    The preference becomes the app's color mode: when it changes, another branch of the
    match mounts and its ``on_mount`` calls the color mode setter in the browser.
    """
    sync = rx.cond(
        SessionState.signed_in,
        rx.match(
            SessionState.theme,
            ("dark", _apply_color_mode("dark")),
            ("light", _apply_color_mode("light")),
            _apply_color_mode("system"),
        ),
    )
    return rx.fragment(sync, *children)


def app_shell(*children: rx.Component) -> rx.Component:
    """The signed-in frame; nothing inside renders until the guard has verified the token."""
    return frame(
        themed(
            rx.box(
                session_watch(),
                navbar(),
                rx.el.main(
                    container(
                        rx.cond(
                            SessionState.signed_in,
                            rx.fragment(*children),
                            rx.center(rx.spinner(size="3"), padding="4rem"),
                        ),
                        padding_y="1.5rem",
                    ),
                ),
                min_height="100vh",
                background="var(--gray-2)",
            )
        )
    )
