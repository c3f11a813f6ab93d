"""``sage backup now|list``, ``sage restore BACKUP --target-url URL [--force] [--unverified]`` and ``sage task submit|status``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any


def add_commands(commands: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    backup = commands.add_parser(
        "backup", help="verified backups of the platform database: now, list (SAGE_BACKUP_DIR or SAGE_S3_BUCKET)"
    )
    backup.add_argument("action", choices=["now", "list"])
    backup.add_argument("--json", action="store_true", help="print JSON")
    add_common(backup)
    backup.set_defaults(func=_cmd_backup)

    restore = commands.add_parser("restore", help="restore a backup into a database (refuses a non-empty one)")
    restore.add_argument(
        "backup", help="a backup's name or location from `sage backup list` (local or S3), or a sage-*.dump file"
    )
    restore.add_argument("--target-url", required=True, help="PostgreSQL URL of the database to restore into")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace what the target database holds (restored aside, checked, then swapped in)",
    )
    restore.add_argument(
        "--unverified", action="store_true", help="restore a dump that has no manifest (nothing to verify it against)"
    )
    add_common(restore)
    restore.set_defaults(func=_cmd_restore)

    task = commands.add_parser("task", help="long agent tasks run by Dagster: submit, status")
    task.add_argument("action", choices=["submit", "status"])
    task.add_argument("text", help="submit: the question; status: the task id")
    task.add_argument("--user", default="anonymous", help="submit: the user id")
    task.add_argument("--session", help="submit: continue this session")
    add_common(task)
    task.set_defaults(func=_cmd_task)


def _cmd_backup(args: argparse.Namespace) -> int:
    from sage_platform.cli import _apply_flags
    from sage_platform.ops.backup import apply_retention, backup_now, list_backups

    settings = _apply_flags(args)
    if args.action == "list":
        backups = list_backups(settings)
        if args.json:
            print(json.dumps(backups, indent=2))
        for b in [] if args.json else backups:
            print(f"{b['location']}  {b['size_bytes'] / 2**20:8.2f} MB  {b['created_at']}  "
                  f"{'verified' if b['verified'] else 'no manifest'} ({b['tables']} tables)")  # fmt: skip
        return 0
    result = backup_now(settings)
    deleted = apply_retention(settings)
    print(f"{result.location}: {result.size_bytes / 2**20:.2f} MB in {result.dump_seconds:.1f} s; "
          f"verified {len(result.tables)} tables in {result.verify_seconds:.1f} s; retention removed {len(deleted)}")  # fmt: skip
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from sage_platform.cli import _apply_flags
    from sage_platform.ops.restore import restore

    checks = restore(_apply_flags(args), args.backup, args.target_url, force=args.force, unverified=args.unverified)
    bad = [c["table"] for c in checks if not c["match"]]
    if not checks:
        print(f"restored {args.backup} UNVERIFIED: it has no manifest to compare with")
        return 0
    print(f"restored {args.backup}: {len(checks) - len(bad)}/{len(checks)} tables match the backup's manifest")
    if bad:
        print(f"differ: {', '.join(bad)}")
    return 1 if bad else 0


def _cmd_task(args: argparse.Namespace) -> int:
    from sage_platform.cli import _apply_flags
    from sage_platform.db import Database
    from sage_platform.server.schemas import StreamRequest
    from sage_platform.server.tasks import TaskStore

    tasks = TaskStore(Database.from_settings(_apply_flags(args)))
    if args.action == "status":
        found = tasks.get(args.text)
        if found is None:
            raise ValueError(f"no task {args.text}")
        print(json.dumps(found, indent=2))
        return 0
    body: dict[str, Any] = {"messages": [{"role": "user", "content": args.text}], "user_id": args.user}
    if args.session:
        body["session_id"] = args.session
    task = tasks.submit(StreamRequest.model_validate(body))
    print(task["task_id"])
    print(f"pending: agent_task_sensor launches it; follow GET /api/tasks/{task['task_id']}/stream", file=sys.stderr)
    return 0
