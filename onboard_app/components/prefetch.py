"""Loading another page's code ahead of the click that opens it."""

from __future__ import annotations

import reflex as rx

from onboard_app.components.deferred import after_first_paint


class PrefetchPageLinks(rx.Component):
    """React Router's ``<PrefetchPageLinks page=...>``: ``modulepreload`` links for a page.

    It renders one ``<link rel="modulepreload">`` per JavaScript module of the page's
    route (its chunk and every chunk that chunk imports), so a later client-side
    navigation there finds them already fetched and compiled.
    """

    library = "react-router"
    tag = "PrefetchPageLinks"

    #: The page's path, e.g. ``/explore``.
    page: rx.Var[str]


def prefetch_page(path: str) -> rx.Component:
    """The code of the page at ``path``, fetched while this page is shown.

    Once the page's first frame is painted: the page draws first.

    Args:
        path: A route of the app.

    Returns:
        The (invisible) prefetch links.
    """
    return after_first_paint(PrefetchPageLinks.create(page=path))
