"""Access rules: what every event handler and every page requires of the verified session.

Pure: no database, no Reflex. Every public event handler declares one :class:`Rule`; the
session layer (``onboard_app/state/session.py``) checks it from the verified session of
the connection before the handler body runs, and the page guard asks the same rules for
navigation (:func:`decide`). The router path never decides what a handler may do: the
only thing a page path chooses is which page's rule the *navigation* convenience checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from onboard_app import routes
from onboard_app.services.onboarding import Step, can_open, parse_step


class Stage(StrEnum):
    """Where in onboarding a signed-in user must be."""

    ANY = "any"
    ONBOARDING = "onboarding"
    COMPLETED = "completed"


@dataclass(frozen=True)
class Rule:
    """What a handler or a page requires.

    Attributes:
        name: How the rule reads in logs, docs and tests.
        signed_in: A verified session is required.
        stage: The onboarding stage the user must be at.
        step: A wizard step that must be open to the user (reached, not completed).
        closed: Nobody may call it (generic handlers no page uses).
    """

    name: str
    signed_in: bool = True
    stage: Stage = Stage.ANY
    step: Step | None = None
    closed: bool = False


#: Anyone, signed in or not (login forms, the guard, logout, OAuth).
ANYONE = Rule("anyone", signed_in=False)
#: Signed in, at any onboarding stage.
SIGNED_IN = Rule("signed in")
#: Signed in and onboarding not finished.
ONBOARDING = Rule("onboarding", stage=Stage.ONBOARDING)
#: Signed in and onboarding finished.
COMPLETED = Rule("completed", stage=Stage.COMPLETED)
#: No client may call it.
NOBODY = Rule("nobody", closed=True)


def step_open(step: Step) -> Rule:
    """Signed in, onboarding not finished, and ``step`` open (reached or before it)."""
    return Rule(f"step {step.value} open", stage=Stage.ONBOARDING, step=step)


def permits(rule: Rule, reached: Step | None) -> bool:
    """Whether a visitor whose reached step is ``reached`` satisfies ``rule``.

    Args:
        rule: The declared rule.
        reached: The verified session's reached step; ``None`` when not signed in.

    Returns:
        True if the handler may run.
    """
    if rule.closed:
        return False
    if reached is None:
        return not rule.signed_in
    if rule.stage is Stage.ONBOARDING and reached is Step.COMPLETED:
        return False
    if rule.stage is Stage.COMPLETED and reached is not Step.COMPLETED:
        return False
    return rule.step is None or can_open(rule.step, reached)


def refused_target(reached: Step | None, wanted: str) -> str:
    """Where a refused visitor is sent: the login page, or where the user belongs.

    Args:
        reached: The verified session's reached step; ``None`` when not signed in.
        wanted: The page the client says it was on (remembered as ``next`` if allowed).

    Returns:
        A path.
    """
    return routes.login_with_next(_normal(wanted)) if reached is None else home_for(reached)


def home_for(reached: Step) -> str:
    """Where a signed-in user belongs: the reached onboarding step or explore."""
    return routes.onboarding(reached)


# --- pages ----------------------------------------------------------------------------------

#: Pages anyone may see; a signed-in user is sent on to where they belong.
GUEST_PAGES = frozenset((routes.LOGIN, routes.SIGNUP))
#: Stands for "only visitors who are not signed in" in the page table.
GUEST = Rule("guest", signed_in=False)


def page_rule(path: str) -> Rule:
    """The rule of the page at ``path`` (unknown pages need a session, then go home).

    Args:
        path: A page path (no query string).

    Returns:
        The page's rule.
    """
    path = _normal(path)
    if path.startswith(routes.OAUTH_CALLBACK_PREFIX):
        return ANYONE
    if path in GUEST_PAGES:
        return GUEST
    if path in routes.APP_PAGES:
        return COMPLETED
    if path.startswith(routes.ONBOARDING_PREFIX + "/"):
        step = parse_step(path.removeprefix(routes.ONBOARDING_PREFIX + "/"))
        if step is not None and step is not Step.COMPLETED:
            return step_open(step)
    return NOBODY


def decide(path: str, reached: Step | None, next_param: object = None) -> str | None:
    """The redirect a visitor of ``path`` needs, or ``None`` if they may stay.

    Args:
        path: The page path (no query string).
        reached: The signed-in user's reached step; ``None`` for an anonymous visitor.
        next_param: The ``next`` query parameter of login/signup pages.

    Returns:
        A path to redirect to, or ``None``.
    """
    rule = page_rule(path)
    if rule is GUEST:
        if reached is None:
            return None
        target = routes.safe_next(next_param)
        if target and permits(page_rule(target), reached):
            return target
        return home_for(reached)
    if permits(rule, reached):
        return None
    if rule is NOBODY and reached is None:
        return routes.LOGIN
    return refused_target(reached, path)


def _normal(path: str) -> str:
    return path.rstrip("/") or routes.HOME
