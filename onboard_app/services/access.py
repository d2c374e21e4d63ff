"""Page access: the one place that decides, for every page, where a visitor may be.

``decide`` is pure: the states pass it the path and the reached onboarding step from a
verified session (``None`` when anonymous) and follow the redirect it returns.
"""

from __future__ import annotations

from onboard_app import routes
from onboard_app.services.onboarding import Step, can_open, parse_step

#: Pages anyone may see; a signed-in user is sent on to where they belong.
GUEST_PAGES = frozenset((routes.LOGIN, routes.SIGNUP))


def home_for(reached: Step) -> str:
    """Where a signed-in user belongs: the reached onboarding step or explore."""
    return routes.onboarding(reached)


def decide(path: str, reached: Step | None, next_param: object = None) -> str | None:
    """The redirect a visitor of ``path`` needs, or ``None`` if they may stay.

    Args:
        path: The page path (no query string).
        reached: The signed-in user's reached step; ``None`` for an anonymous visitor.
        next_param: The ``next`` query parameter of login/signup pages.

    Returns:
        A path to redirect to, or ``None``.
    """
    path = path.rstrip("/") or routes.HOME
    if path.startswith(routes.OAUTH_CALLBACK_PREFIX):
        return None
    if reached is None:
        if path in GUEST_PAGES:
            return None
        return routes.login_with_next(path)
    if path in GUEST_PAGES or path == routes.HOME:
        target = routes.safe_next(next_param) if path in GUEST_PAGES else None
        if target and decide(target, reached) is None:
            return target
        return home_for(reached)
    if path.startswith(routes.ONBOARDING_PREFIX + "/"):
        step = parse_step(path.removeprefix(routes.ONBOARDING_PREFIX + "/"))
        if step is None or not can_open(step, reached):
            return home_for(reached)
        return None
    if path in routes.APP_PAGES:
        return None if reached is Step.COMPLETED else home_for(reached)
    return home_for(reached)
