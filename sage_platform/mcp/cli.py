"""``sage mcp`` (the memory server, tokens) and ``sage memory`` (status, search, clear)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any


def add_commands(commands: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="the MCP memory server for coding agents (streamable HTTP on 127.0.0.1:17800/mcp, or stdio)",
        description="Register it with `claude mcp add sage -- sage mcp --stdio` or "
        "`claude mcp add --transport http sage http://127.0.0.1:17800/mcp --header 'Authorization: Bearer <token>'`.",
    )
    mcp.add_argument("--host", dest="mcp_host", help="address (SAGE_MCP_HOST, default 127.0.0.1)")
    mcp.add_argument("--port", dest="mcp_port", type=int, help="port (SAGE_MCP_PORT, default 17800)")
    mcp.add_argument("--stdio", action="store_true", help="speak MCP on stdin/stdout instead of HTTP")
    mcp.add_argument("--no-auth", dest="mcp_no_auth", action="store_true", help="no tokens (loopback only; warns)")
    add_common(mcp)
    mcp.set_defaults(func=_cmd_mcp)
    from sage_platform.keys_cli import add_key_actions

    tokens = mcp.add_subparsers(dest="mcp_command", metavar="token", required=False)
    token = tokens.add_parser("token", help="memory-server tokens: create --user NAME [--admin] | list | revoke ID")
    add_key_actions(token, audience="mcp", add_common=add_common, apply_flags=_settings)

    memory = commands.add_parser("memory", help="the memory server's store: status, search, clear")
    memory.add_argument("action", choices=["status", "search", "clear"])
    memory.add_argument("query", nargs="?", help="for search: the query")
    memory.add_argument("--limit", type=int, default=10, help="for search: how many hits (default 10)")
    memory.add_argument("--session", help="search or clear this session")
    memory.add_argument("--user", help="only this user's memories (clear: whose session; needed if several have it)")
    memory.add_argument("--force", action="store_true", help="for clear: really delete")
    memory.add_argument("--json", action="store_true", help="print JSON")
    add_common(memory)
    memory.set_defaults(func=_cmd_memory)


def _settings(args: argparse.Namespace) -> Any:
    from sage_platform.cli import _apply_flags

    for name in ("mcp_host", "mcp_port"):
        if getattr(args, name, None):
            os.environ[f"SAGE_{name.upper()}"] = str(getattr(args, name))
    if getattr(args, "mcp_no_auth", False):
        os.environ["SAGE_MCP_NO_AUTH"] = "true"
    return _apply_flags(args)


def _cmd_mcp(args: argparse.Namespace) -> int:
    from sage_platform.server.network import check_bind

    settings = _settings(args)
    if args.stdio:
        from sage_platform.mcp import serve_stdio

        serve_stdio(settings)
        return 0
    # The memory server always needs tokens, unless --no-auth (loopback only).
    check_bind(settings.mcp_host, keys_configured=True, no_auth=settings.mcp_no_auth,
               keys_setting="SAGE_MCP_TOKENS", flag="--no-auth")  # fmt: skip
    from sage_platform.mcp import serve_http

    print(f"Sage memory server on http://{settings.mcp_host}:{settings.mcp_port}/mcp", file=sys.stderr)
    serve_http(settings)
    return 0


def _cmd_memory(args: argparse.Namespace) -> int:
    from sage_platform.mcp.server import MemoryService

    memory = MemoryService.from_settings(_settings(args))
    store = memory.store
    if args.action == "status":
        stats = store.stats(args.user)
        if args.json:
            print(json.dumps(stats, indent=2))
            return 0
        print(f"{stats['total_memories']} memories in {len(stats['sessions'])} sessions; "
              f"model {stats['embedding_model']} ({stats['embedding_dimension']} dimensions, {stats['vector_type']})")  # fmt: skip
        for session in stats["sessions"]:
            print(f"  {session['user_id']:<16} {session['session_id']:<32} {session['memories']:>7}"
                  f"  last {session['last_saved']}")  # fmt: skip
        return 0
    if args.action == "search":
        if not args.query:
            raise ValueError('sage memory search needs a query: sage memory search "what was decided"')
        vector, _ = memory.embed(args.query)
        hits = store.search(args.query, vector, limit=args.limit, user_id=args.user, session_id=args.session)
        if args.json:
            print(json.dumps([h.as_dict() for h in hits], indent=2, ensure_ascii=False))
            return 0
        for rank, hit in enumerate(hits, start=1):
            text = " ".join(f"{hit.user_input} → {hit.assistant_response}".split())
            print(f"{rank:>3}  {hit.similarity:6.3f}  {hit.user_id}/{hit.session_id}  {text[:100]}")
        if not hits:
            print("no memories found", file=sys.stderr)
        return 0
    if not args.session:
        raise ValueError("sage memory clear needs --session SESSION (and --force)")
    user = args.user or _only_owner(store.session_owners(args.session), args.session)
    if not args.force:
        info = store.session_info(user, args.session)
        count = info["memories"] if info else 0
        print(f"would delete session {args.session} of user {user} and its {count} memories; add --force to do it",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"deleted {store.clear_session(user, args.session)} memories of session {args.session} (user {user})")
    return 0


def _only_owner(owners: list[str], session_id: str) -> str:
    if len(owners) == 1:
        return owners[0]
    if not owners:
        raise ValueError(f"no session {session_id}")
    raise ValueError(f"users {', '.join(owners)} each have a session {session_id}: name one with --user")
