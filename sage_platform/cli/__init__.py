"""The ``sage`` command. Flags win over ``SAGE_*`` environment variables, which win over defaults.

sage up            embedded Postgres + Dagster UI on 127.0.0.1:3000, then one materialization
sage materialize   the whole asset graph once, no UI; non-zero exit on failure
sage worker        keeps the graph and model loaded: sage materialize runs in it, in seconds
sage report        the last evaluation
sage serve         the streaming agent server on 127.0.0.1:8080 (chat page at /)
sage chat          [--url URL] [--key KEY]: chat with the agent server in the terminal
sage backup        now | list: verified backups; sage restore BACKUP --target-url URL [--force]
sage task          submit "question" | status ID: long agent tasks run by Dagster
sage keys          create --user NAME [--admin] | list | revoke ID: keys of the agent server
sage mcp           the MCP memory server on 127.0.0.1:17800/mcp (or --stdio); sage mcp token create|list|revoke;
                   sage mcp connect claude|print; sage memory status|search|clear|hook
sage pipeline run  PATH.py | rag_answers [--env local|dagster|ray]: a dataflow pipeline
sage doctor        checks Python, database, pgvector, embedder and LLM settings
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sage_platform import __version__
from sage_platform.cli._flags import (
    AGENT_SERVER,
    CHUNKING,
    CORPUS,
    ELASTICSEARCH,
    EMBEDDING,
    LLM,
    RETRIEVAL,
    STORAGE,
    add_settings,
    settings_from,
)

PIPELINE = STORAGE + CORPUS + CHUNKING + EMBEDDING + ("max_document_bytes", "max_delete_fraction")


def _cmd_up(args: argparse.Namespace) -> int:
    from sage_platform import runtime

    settings = settings_from(args, for_children=True)
    return runtime.up(settings, materialize=not args.no_materialize, verbose=args.verbose)


def _cmd_materialize(args: argparse.Namespace) -> int:
    from sage_platform import runtime

    assets = [name.strip() for name in (args.select or "").split(",") if name.strip()] or None
    settings = settings_from(args, for_children=True)
    ok = runtime.materialize_via_worker(
        settings, log_level=args.log_level, assets=assets, use_worker=not args.no_worker
    )
    print("materialization succeeded" if ok else "materialization FAILED", file=sys.stderr)
    return 0 if ok else 1


def _cmd_worker(args: argparse.Namespace) -> int:
    from sage_platform import runtime
    from sage_platform.worker.server import WorkerAlreadyRunning, serve_worker

    settings = settings_from(args, for_children=True)
    print(f"[sage worker] warming up for {settings.data_dir.resolve()} (graph, checks, model)", flush=True)
    try:
        serve_worker(settings, ready=lambda path: print(f"[sage worker] ready on {path}", flush=True))
    except WorkerAlreadyRunning as running:
        print(f"error: {running}", file=sys.stderr)
        return runtime.WORKER_ALREADY_RUNNING
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from sage_platform.network import check_server_bind
    from sage_platform.server import serve
    from sage_platform.server.preflight import StartupError, preflight

    settings = settings_from(args, for_children=True)  # --workers: each worker reads them from SAGE_*
    check_server_bind(settings)
    try:
        for problem in preflight(settings, os.environ):
            print(f"warning: {problem}", file=sys.stderr)
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Sage agent server on http://{settings.host}:{settings.port} (chat page at /, API docs at /docs)")
    serve(settings)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from sage_platform.evaluation import HEADLINE_METRICS, read_report

    report = read_report(settings_from(args).reports_dir)
    if report is None:
        print("no evaluation yet: run `sage materialize` first", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"evaluation {report['run_id']} at {report['created_at']}")
    for name in HEADLINE_METRICS:
        print(f"  {name:<12} {report[name]:10.4f}")
    settings = report.get("settings", {})
    print(f"  answerer: {settings.get('answerer')}  retriever: {settings.get('retriever')}  "
          f"questions: {settings.get('questions')}")  # fmt: skip
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from sage_platform import runtime
    from sage_platform.db import Database
    from sage_platform.index.pgvector import rollback_pgvector_index

    settings = settings_from(args, for_children=args.action == "rebuild")
    if args.action == "rebuild":
        ok = runtime.materialize_graph(settings, job_name="index_rebuild_job", log_level="INFO")
        print("index rebuild succeeded" if ok else "index rebuild FAILED: the live index is unchanged", file=sys.stderr)
        return 0 if ok else 1
    db = Database.from_settings(settings)
    if args.action == "rollback":
        version = rollback_pgvector_index(db)
        print(f"pgvector index version {version.version} ({version.name}) is live again")
        return 0
    with db.connect() as conn:
        rows = conn.execute(
            """SELECT version, backend, name, status, rows, checks->>'recall@10', model, created_at
               FROM index_versions WHERE status <> 'dropped' ORDER BY backend, version"""
        ).fetchall()
    if not rows:
        print("no index built yet: run `sage materialize`")
    for version, backend, name, status, count, recall, model, created in rows:
        print(f"{backend:<13} v{version:<4} {status:<9} {name:<22} rows={count} recall@10={recall} "
              f"{model} {created:%Y-%m-%d %H:%M}")  # fmt: skip
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from sage_platform.datasets import DATASETS

    stats = DATASETS[args.dataset](args.path, args.out)
    print(f"imported {stats.items} items: corpus {stats.corpus.parent}, golden set {stats.golden}")
    print(f"evaluate it: SAGE_CORPUS_DIR={stats.corpus.parent} SAGE_EVAL_SET={stats.golden} sage materialize")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from sage_platform.doctor import FAIL, run_checks

    settings = settings_from(args)
    if args.settings:
        print(json.dumps(settings.public_dict(), indent=2))  # secrets masked
    checks = run_checks(settings)
    for check in checks:
        print(f"[{check.verdict:<4}] {check.name:<9} {check.detail}")
    failed = [c.name for c in checks if c.verdict == FAIL]
    print("verdict: " + (f"FAIL ({', '.join(failed)})" if failed else "ready"))
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    from sage_platform.cli import chat, keys, memory, ops, pipeline, search

    parser = argparse.ArgumentParser(
        prog="sage", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"sage {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run the platform: embedded Postgres, Dagster UI, one materialization")
    up.add_argument("--no-materialize", action="store_true", help="start the UI without materializing")
    up.add_argument("--verbose", action="store_true", help="show Dagster's own log lines, not only sage's")
    add_settings(up, PIPELINE + ("dagster_host", "dagster_port"),
                 renamed={"dagster_host": "--host", "dagster_port": "--port"})  # fmt: skip
    up.set_defaults(func=_cmd_up)

    materialize = commands.add_parser("materialize", help="materialize the whole asset graph once, without UI")
    materialize.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    materialize.add_argument(
        "--select",
        metavar="ASSET[,ASSET]",
        help="only these assets (and their checks), e.g. raw_documents,document_chunks,chunk_embeddings",
    )
    materialize.add_argument("--no-worker", action="store_true",
                             help="run here even when a warm worker (sage up, sage worker) serves this data folder")  # fmt: skip
    add_settings(materialize, PIPELINE)
    materialize.set_defaults(func=_cmd_materialize)

    worker = commands.add_parser(
        "worker", help="keep the graph, checks and model loaded so that sage materialize runs in seconds",
        description="The warm worker (sage up starts one): sage materialize with the same settings hands it its "
        "runs. One per data folder; Ctrl-C stops it (during a run: interrupts the run first).",
    )  # fmt: skip
    add_settings(worker, PIPELINE)
    worker.set_defaults(func=_cmd_worker)

    serve = commands.add_parser("serve", help="the streaming agent server: /api/stream, chat page, MCP tools")
    add_settings(serve, AGENT_SERVER + LLM + STORAGE + EMBEDDING + RETRIEVAL + ELASTICSEARCH)
    serve.set_defaults(func=_cmd_serve)

    memory.add_commands(commands)
    keys.add_command(commands, "keys", audience="api",
                     help_text="agent-server keys: create --user NAME [--admin] | list | revoke ID")  # fmt: skip
    ops.add_commands(commands)

    report = commands.add_parser("report", help="print the last evaluation")
    report.add_argument("--json", action="store_true", help="the whole report as JSON")
    add_settings(report, ("data_dir",))
    report.set_defaults(func=_cmd_report)

    search.add_command(commands)
    pipeline.add_command(commands)
    chat.add_command(commands)

    index = commands.add_parser("index", help="index versions: status, rebuild (zero downtime), rollback")
    index_actions = index.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, help_text in (
        ("status", "the index versions, live and kept"),
        ("rebuild", "build a new version beside the live one, check its recall, then switch (a Dagster run)"),
        ("rollback", "make the previous version live again"),
    ):
        sub = index_actions.add_parser(action, help=help_text)
        add_settings(sub, STORAGE + (EMBEDDING if action == "rebuild" else ()))
        sub.set_defaults(func=_cmd_index)

    datasets = commands.add_parser("datasets", help="convert a public dataset into a corpus and golden set")
    dataset_commands = datasets.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    importer = dataset_commands.add_parser("import", help="import a dataset file")
    importer.add_argument("dataset", choices=["pubmedqa"], help="pubmedqa: an ori_pqal.json-shaped file")
    importer.add_argument("path", type=Path, help="the dataset file")
    importer.add_argument("--out", type=Path, required=True, help="folder for corpus/ and golden.jsonl")
    importer.set_defaults(func=_cmd_datasets)

    doctor = commands.add_parser("doctor", help="check Python, database, pgvector, embedder and LLM settings")
    doctor.add_argument("--settings", action="store_true", help="also print the effective settings, secrets masked")
    add_settings(doctor, PIPELINE + LLM + ("elasticsearch_url",))
    doctor.set_defaults(func=_cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Usage errors exit 2 (argparse's convention); errors while running exit 1, in one line."""
    args = build_parser().parse_args(argv)
    # Marks this process's database connections, so that on exit it can tell whether anyone else
    # still uses an embedded server it started (`sage up` stops its own explicitly).
    os.environ["PGAPPNAME"] = f"sage-{os.getpid()}"
    already_started = _started_servers()
    try:
        return int(args.func(args))
    except Exception as error:
        message = _explain(error)
        if message is None:
            raise
        print(f"sage: error: {message}", file=sys.stderr)
        return 1
    finally:
        if args.command != "up":
            _release_embedded_servers(already_started)


def _started_servers() -> frozenset[Path]:
    if "sage_platform.db.embedded" not in sys.modules:
        return frozenset()  # nothing imported the database layer yet: nothing started
    from sage_platform.db.embedded import started_servers

    return started_servers()


def _release_embedded_servers(keep: frozenset[Path]) -> None:
    """Stop the embedded PostgreSQL this command started, unless another process is connected to it."""
    if "sage_platform.db.embedded" in sys.modules:
        from sage_platform.db.embedded import release_started_servers

        release_started_servers(keep)


def _explain(error: Exception) -> str | None:
    """One line for the errors a user can act on; ``None`` for bugs, which keep their traceback."""
    from sage_platform.db.errors import NO_INDEX, is_missing_table

    cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
    if is_missing_table(error):
        return NO_INDEX
    if type(cause).__name__ == "OperationalError" and type(cause).__module__.startswith("psycopg"):
        return f"cannot use the database: {str(cause).splitlines()[0]}"
    if isinstance(error, (ValueError, FileNotFoundError, RuntimeError, PermissionError)):
        return str(error)
    return None
