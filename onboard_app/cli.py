"""Small command line for operators: ``python -m onboard_app.cli migrate|make-key|check|rules``."""

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


def main(argv: list[str] | None = None) -> int:
    """Run one command.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m onboard_app.cli")
    parser.add_argument("command", choices=("migrate", "make-key", "check", "rules"))
    args = parser.parse_args(argv)
    if args.command == "make-key":
        print(secrets.token_urlsafe(32))
        return 0
    try:
        if args.command == "rules":
            return _rules()
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
