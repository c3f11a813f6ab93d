"""``sage search``: ranked hits, from the running agent server when there is one on this database.

A fresh process spends seconds loading the embedding model; a running ``sage serve`` (or ``sage up``)
has it loaded. The server is used when it answers on ``SAGE_HOST:SAGE_PORT`` within half a second and
reports the same database; otherwise, or with ``--local``, the search runs in this process.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from sage_platform.cli._flags import EMBEDDING, RETRIEVAL, STORAGE, Commands, add_settings, settings_from
from sage_platform.config import Settings
from sage_platform.filters import FILTER_COLUMNS


def add_command(commands: Commands) -> None:
    search = commands.add_parser("search", help="search the index and print ranked hits")
    search.add_argument("query", help="the query text")
    search.add_argument("-k", type=int, default=10, help="how many hits (default 10)")
    search.add_argument("--filter", action="append", metavar="KEY=VALUE",
                        help=f"repeatable; keys: {', '.join(FILTER_COLUMNS)}, metadata.<name>")  # fmt: skip
    search.add_argument("--json", action="store_true", help="hits as JSON")
    search.add_argument("--snippet", type=int, default=100, help="snippet length in characters")
    search.add_argument("--local", action="store_true", help="search in this process, even if a server runs")
    add_settings(
        search,
        STORAGE + EMBEDDING + RETRIEVAL + ("host", "port"),
        title="settings (flag > SAGE_* environment > default); --host and --port: the agent server to ask",
    )
    search.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    hits = None if args.local else from_server(settings, args.query, args.k, args.filter or [])
    if hits is None:
        hits = in_process(settings, args.query, args.k, args.filter or [])
    if args.json:
        print(json.dumps(hits, ensure_ascii=False))
        return 0
    if not hits:
        print("no results", file=sys.stderr)
    for hit in hits:
        snippet = " ".join(hit["text"].split())
        snippet = snippet if len(snippet) <= args.snippet else snippet[: args.snippet - 1] + "…"
        print(f"{hit['rank']:>3}  {hit['score']:8.4f}  {hit['doc_id']}  {snippet}")
    return 0


def in_process(settings: Settings, query: str, k: int, filter_args: list[str]) -> list[dict[str, Any]]:
    from dataclasses import asdict

    from sage_platform.filters import parse_filter_args
    from sage_platform.platform import Platform

    filters = parse_filter_args(filter_args)
    hits = Platform(settings).retriever_named(settings.retriever).search(query, k=k, filters=filters)
    return [{"rank": rank, **asdict(hit)} for rank, hit in enumerate(hits, start=1)]


def from_server(settings: Settings, query: str, k: int, filter_args: list[str]) -> list[dict[str, Any]] | None:
    """The server's hits, or None when no server of this database answers (then search in-process)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"http://{host}:{settings.port}"
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=0.5) as response:
            health = json.loads(response.read())
    except (OSError, ValueError):
        return None  # nothing there (or not ours)
    if health.get("database") != settings.database_fingerprint:
        return None  # a server on another database
    params = [("q", query), ("k", str(k)), ("retriever", settings.retriever), *(("filter", f) for f in filter_args)]
    request = urllib.request.Request(f"{base}/api/search?{urllib.parse.urlencode(params)}")
    if settings.api_key is not None:
        request.add_header("Authorization", f"Bearer {settings.api_key.get_secret_value()}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            hits: list[dict[str, Any]] = json.loads(response.read())
            return hits
    except urllib.error.HTTPError as error:
        if error.code == 400:  # a bad filter or retriever: the same answer in-process, said once
            raise ValueError(json.loads(error.read()).get("detail", str(error))) from None
        print(f"(the agent server at {base} answered {error.code}: searching in this process)", file=sys.stderr)
        return None
    except OSError:
        return None
