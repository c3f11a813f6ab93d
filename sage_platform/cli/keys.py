"""``sage keys create|list|revoke`` (agent server) and ``sage mcp token create|list|revoke`` (memory server).

``create`` prints the new key as the last line of its output, and only then: just its digest is kept.

Usage::

    sage keys create --user alice --admin     # … then the key, alone on the last line
    sage keys list
    sage keys revoke k_1a2b3c4d5e6f
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from sage_platform.cli._flags import STORAGE, Commands, add_settings, settings_from

if TYPE_CHECKING:  # identity imports the database driver: not needed for --help
    from sage_platform.identity import Audience

_SETTING = {"api": "SAGE_API_KEYS", "mcp": "SAGE_MCP_TOKENS"}


def add_command(commands: Commands, name: str, *, audience: Audience, help_text: str) -> argparse.ArgumentParser:
    """``sage keys`` / ``sage mcp token``: create, list and revoke, each a subcommand of its own."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
    noun = "key" if audience == "api" else "token"
    actions = parser.add_subparsers(dest="key_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help=f"issue a {noun} for a user; it is printed once, on the last line")
    create.add_argument("--user", required=True, help="the user the key acts for (letters, digits, _ . @ -)")
    create.add_argument("--admin", action="store_true", help="the admin role: reads every user's data, manages tools")
    listing = actions.add_parser("list", help=f"every issued {noun}: id, user, role, created, last used, revoked")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help=f"revoke a {noun} by its id (see list); it stops working at once")
    revoke.add_argument("key_id", help="the id shown by create and list, e.g. k_1a2b3c4d5e6f")
    for action in (create, listing, revoke):
        add_settings(action, STORAGE)
        action.set_defaults(func=lambda args: _run(args, audience))
    return parser


def _run(args: argparse.Namespace, audience: Audience) -> int:
    from sage_platform.db import Database
    from sage_platform.identity import issue_key, list_keys, revoke_key

    db = Database.from_settings(settings_from(args))
    if args.key_action == "create":
        issued = issue_key(db, args.user, audience=audience, admin=args.admin)
        role = "admin" if issued.admin else "user"
        print(f"issued {issued.key_id} for {issued.user_id} ({role}); store it now, only its hash is kept:",
              file=sys.stderr)  # fmt: skip
        print(issued.secret)
        return 0
    if args.key_action == "list":
        rows = list_keys(db, audience=audience)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
            return 0
        for row in rows:
            state = f"revoked {row['revoked_at']:%Y-%m-%d %H:%M}" if row["revoked_at"] else "active"
            used = f"{row['last_used']:%Y-%m-%d %H:%M}" if row["last_used"] else "never"
            role = "admin" if row["admin"] else "user"
            print(f"{row['key_id']}  {row['user_id']:<20} {role:<5}  created {row['created_at']:%Y-%m-%d %H:%M}"
                  f"  last used {used}  {state}")  # fmt: skip
        if not rows:
            print(f"no keys issued (environment keys in {_SETTING[audience]} are not listed)", file=sys.stderr)
        return 0
    if revoke_key(db, args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    raise ValueError(f"no active key {args.key_id!r} (see `sage keys list`)")
