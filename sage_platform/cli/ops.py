"""``sage backup now|list``, ``sage restore BACKUP --target-url URL [--force] [--unverified]`` and ``sage task submit|status``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sage_platform.cli._flags import BACKUP, STORAGE, Commands, add_settings, settings_from


def add_commands(commands: Commands) -> None:
    backup = commands.add_parser(
        "backup", help="verified backups of the platform database: now, list (SAGE_BACKUP_DIR or SAGE_S3_BUCKET)"
    )
    backup_actions = backup.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, help_text in (("now", "dump, verify and keep a backup; apply retention"), ("list", "the backups kept")):
        sub = backup_actions.add_parser(action, help=help_text)
        sub.add_argument("--json", action="store_true", help="print JSON")
        add_settings(sub, STORAGE + BACKUP)
        sub.set_defaults(func=_cmd_backup)

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
    add_settings(restore, STORAGE + BACKUP)
    restore.set_defaults(func=_cmd_restore)

    task = commands.add_parser("task", help="long agent tasks run by Dagster: submit, status")
    task_actions = task.add_subparsers(dest="action", required=True, metavar="ACTION")
    submit = task_actions.add_parser("submit", help="queue a question; agent_task_sensor launches its run")
    submit.add_argument("text", metavar="QUESTION", help="the question")
    submit.add_argument("--user", default="anonymous", help="the user id")
    submit.add_argument("--session", help="continue this session")
    status = task_actions.add_parser("status", help="a task's state, result or error")
    status.add_argument("text", metavar="TASK_ID", help="the task id printed by submit")
    for sub in (submit, status):
        add_settings(sub, STORAGE)
        sub.set_defaults(func=_cmd_task)


def _cmd_backup(args: argparse.Namespace) -> int:
    from sage_platform.ops.backup import apply_retention, backup_now, list_backups

    settings = settings_from(args)
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
    from sage_platform.ops.restore import restore

    checks = restore(settings_from(args), args.backup, args.target_url, force=args.force, unverified=args.unverified)
    bad = [c["table"] for c in checks if not c["match"]]
    if not checks:
        print(f"restored {args.backup} UNVERIFIED: it has no manifest to compare with")
        return 0
    print(f"restored {args.backup}: {len(checks) - len(bad)}/{len(checks)} tables match the backup's manifest")
    if bad:
        print(f"differ: {', '.join(bad)}")
    return 1 if bad else 0


def _cmd_task(args: argparse.Namespace) -> int:
    from sage_platform.agent.requests import StreamRequest
    from sage_platform.agent.tasks import TaskStore
    from sage_platform.db import Database

    tasks = TaskStore(Database.from_settings(settings_from(args)))
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
