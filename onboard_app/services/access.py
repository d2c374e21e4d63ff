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
from onboard_app.services import onboarding
from onboard_app.services.onboarding import Step, can_open, parse_step
from onboard_app.services.roles import ADMIN as ADMIN_ROLE
from onboard_app.settings import get_settings


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
        open_step: The step this tab has open (set by the wizard page's loader after
            its own check) must be open to the user.
        closed: Nobody may call it (generic handlers no page uses).
        verified: With ``signed_in``, the account needs no email confirmation. This is
            what requires a verified email: every rule that needs a session, unless it
            says ``verified=False``.
        development_only: Refused in production (the development mailbox).
        role: A role the verified session's user must have now (read from the row).
    """

    name: str
    signed_in: bool = True
    stage: Stage = Stage.ANY
    step: Step | None = None
    open_step: bool = False
    closed: bool = False
    verified: bool = True
    development_only: bool = False
    role: str | None = None


#: Anyone, signed in or not (login forms, the guard, logout, OAuth).
ANYONE = Rule("anyone", signed_in=False)
#: Signed in, at any onboarding stage.
SIGNED_IN = Rule("signed in")
#: Signed in and onboarding not finished.
ONBOARDING = Rule("onboarding", stage=Stage.ONBOARDING)
#: Signed in and onboarding finished.
COMPLETED = Rule("completed", stage=Stage.COMPLETED)
#: Signed in, onboarding not finished, and the step this tab has open still open to them.
OPEN_STEP = Rule("the open step", stage=Stage.ONBOARDING, open_step=True)
#: No client may call it.
NOBODY = Rule("nobody", closed=True)
#: Anyone, in development only (the development mailbox); nobody in production.
DEVELOPMENT = Rule("development only", signed_in=False, development_only=True)
#: Signed in, onboarding finished, and the admin role (the insights page).
ADMIN = Rule("admin", stage=Stage.COMPLETED, role=ADMIN_ROLE)


def step_open(step: Step) -> Rule:
    """Signed in, onboarding not finished, and ``step`` open (reached or before it)."""
    return Rule(f"step {step} open", stage=Stage.ONBOARDING, step=step)


def permits(
    rule: Rule,
    reached: Step | None,
    open_step: Step | None = None,
    *,
    verified: bool = True,
    role: str | None = None,
) -> bool:
    """Whether a visitor whose reached step is ``reached`` satisfies ``rule``.

    Args:
        rule: The declared rule.
        reached: The verified session's reached step; ``None`` when not signed in.
        open_step: The step the calling tab has open (for :data:`OPEN_STEP`).
        verified: The verified session's ``user.email_verified`` (the gate passes it).
        role: The verified session's ``user.role`` (the gate passes it).

    Returns:
        True if the handler may run.
    """
    if rule.closed or (rule.development_only and get_settings().is_production):
        return False
    if reached is None:
        return not rule.signed_in
    if rule.signed_in and rule.verified and not verified:
        return False
    if rule.role is not None and role != rule.role:
        return False
    if rule.stage is Stage.ONBOARDING and reached == onboarding.COMPLETED:
        return False
    if rule.stage is Stage.COMPLETED and reached != onboarding.COMPLETED:
        return False
    if rule.open_step and (open_step is None or not can_open(open_step, reached)):
        return False
    return rule.step is None or can_open(rule.step, reached)


def refused_target(reached: Step | None, wanted: str, *, verified: bool = True) -> str:
    """Where a refused visitor is sent: the login page, or where the user belongs.

    Args:
        reached: The verified session's reached step; ``None`` when not signed in.
        wanted: The page the client says it was on (remembered as ``next`` if allowed).
        verified: Whether the signed-in account needs no email confirmation.

    Returns:
        A path.
    """
    if reached is None:
        return routes.login_with_next(_normal(wanted))
    return home_for(reached, verified=verified)


def home_for(reached: Step, *, verified: bool = True) -> str:
    """Where a signed-in user belongs: confirming their address, their step, or explore."""
    return routes.onboarding(reached) if verified else routes.VERIFY_EMAIL


# --- pages ----------------------------------------------------------------------------------

#: Pages anyone may see; a signed-in user is sent on to where they belong.
GUEST_PAGES = frozenset((routes.LOGIN, routes.SIGNUP, routes.FORGOT_PASSWORD))
#: Pages for anyone, signed in or not: where mailed links land, and the goodbye page.
_OPEN_PAGES = frozenset((routes.RESET_PASSWORD, routes.CONFIRM_EMAIL, routes.ACCOUNT_DELETED))
#: Stands for "only visitors who are not signed in" in the page table.
GUEST = Rule("guest", signed_in=False)
#: Stands for "visitors who are not signed in, or whose address is not confirmed yet".
CONFIRMING = Rule("confirming", signed_in=False)


def page_rule(path: str) -> Rule:
    """The rule of the page at ``path`` (unknown pages need a session, then go home).

    Args:
        path: A page path (no query string).

    Returns:
        The page's rule.
    """
    path = _normal(path)
    if path.startswith(routes.OAUTH_CALLBACK_PREFIX) or path in _OPEN_PAGES:
        return ANYONE
    if path in GUEST_PAGES:
        return GUEST
    if path == routes.VERIFY_EMAIL:
        return CONFIRMING
    if path == routes.DEV_MAILBOX:
        return DEVELOPMENT
    if path in routes.APP_PAGES:
        return COMPLETED
    if path.startswith(routes.ONBOARDING_PREFIX + "/"):
        step = parse_step(path.removeprefix(routes.ONBOARDING_PREFIX + "/"))
        if step is not None and step != onboarding.COMPLETED:
            return step_open(step)
    return NOBODY


def decide(
    path: str, reached: Step | None, next_param: object = None, *, verified: bool = True
) -> str | None:
    """The redirect a visitor of ``path`` needs, or ``None`` if they may stay.

    Args:
        path: The page path (no query string).
        reached: The signed-in user's reached step; ``None`` for an anonymous visitor.
        next_param: The ``next`` query parameter of login/signup pages.
        verified: Whether the signed-in account needs no email confirmation.

    Returns:
        A path to redirect to, or ``None``.
    """
    rule = page_rule(path)
    if rule is CONFIRMING and (reached is None or not verified):
        return None
    if rule in (GUEST, CONFIRMING):
        if reached is None:
            return None
        target = routes.safe_next(next_param)
        if target and permits(page_rule(target), reached, verified=verified):
            return target
        return home_for(reached, verified=verified)
    if permits(rule, reached, verified=verified):
        return None
    if rule is NOBODY and reached is None:
        return routes.LOGIN
    return refused_target(reached, path, verified=verified)


def _normal(path: str) -> str:
    return path.rstrip("/") or routes.HOME
