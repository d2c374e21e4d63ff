"""Small command line for operators: ``python -m onboard_app.cli <command>``.

Commands: ``migrate``, ``make-key``, ``check``, ``rules``, ``grant-admin EMAIL``,
``revoke-admin EMAIL``, ``prune-events``, ``prune-sessions``, ``rewrap-two-factor``.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from onboard_app.settings import SettingsError, get_settings


def _migrate() -> int:
    from onboard_app.services.catalogue_seed import seed_catalogue
    from onboard_app.services.db import current_revision, upgrade_to_head

    settings = get_settings()
    upgrade_to_head(settings.database_url)
    changed = seed_catalogue(settings.database_url)
    revision = current_revision(settings.database_url)
    print(f"database at revision {revision}; catalogue rows written: {changed}")
    return 0


def _rules() -> int:
    import onboard_app.onboard_app  # noqa: F401 (registers every state)
    from onboard_app.state.session import rule_table

    print("| handler | requires |\n|---|---|")
    for handler, rule in rule_table():
        print(f"| `{handler}` | {rule} |")
    return 0


def _set_admin(email: str | None, grant: bool) -> int:
    from onboard_app.services import roles, users

    address = users.normalise_email(email)
    if address is None:
        print("give the account's email address", file=sys.stderr)
        return 2
    user = users.get_user_by_email(address)
    if user is None:
        print(f"no account has the address {address}", file=sys.stderr)
        return 1
    if grant and user.password_hash is not None and user.email_verified_at is None:
        print(f"{address} is not verified yet: its owner must confirm it first", file=sys.stderr)
        return 1
    users.set_role(address, roles.ADMIN if grant else roles.MEMBER)
    if grant:
        print(f"user {user.id} ({address}) is an admin from their next event")
    elif address in get_settings().admin_emails:
        print(f"user {user.id} ({address}) stays an admin: the address is in ONBOARD_ADMIN_EMAILS")
    else:
        print(f"user {user.id} ({address}) is no longer an admin, from their next event")
    return 0


def _prune() -> int:
    from onboard_app.services.events import prune_events

    days = get_settings().events_retention_days
    print(f"deleted {prune_events()} onboarding event(s) older than {days} days")
    return 0


def _prune_sessions() -> int:
    from onboard_app.models import utcnow
    from onboard_app.services.users import prune_device_sessions

    print(f"deleted {prune_device_sessions(utcnow())} expired session(s)")
    return 0


def _rewrap_two_factor() -> int:
    from onboard_app.services.two_factor import rewrap_secrets

    done, failed = rewrap_secrets()
    key = get_settings().current_key.kid
    print(f"two-factor secrets re-encrypted under key {key}: {done}")
    if failed:
        print(
            f"{failed} secret(s) could not be decrypted (their key is no longer listed): "
            "those accounts sign in with a recovery code and set up their app again",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m onboard_app.cli")
    parser.add_argument(
        "command",
        choices=(
            "migrate",
            "make-key",
            "check",
            "rules",
            "grant-admin",
            "revoke-admin",
            "prune-events",
            "prune-sessions",
            "rewrap-two-factor",
        ),
    )
    parser.add_argument("email", nargs="?", help="the account (grant-admin, revoke-admin)")
    args = parser.parse_args(argv)
    if args.command == "make-key":
        print(secrets.token_urlsafe(32))
        return 0
    try:
        if args.command == "rules":
            return _rules()
        if args.command in ("grant-admin", "revoke-admin"):
            return _set_admin(args.email, args.command == "grant-admin")
        if args.command == "prune-events":
            return _prune()
        if args.command == "prune-sessions":
            return _prune_sessions()
        if args.command == "rewrap-two-factor":
            return _rewrap_two_factor()
        if args.command == "check":
            settings = get_settings()
            print(f"settings OK ({settings.environment}, {len(settings.signing_keys)} key(s))")
            return 0
        return _migrate()
    except SettingsError as problem:
        print(f"configuration error: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
