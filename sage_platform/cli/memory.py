"""``sage mcp`` (the memory server, tokens) and ``sage memory`` (status, search, clear)."""

from __future__ import annotations

import argparse
import json
import sys

from sage_platform.cli._flags import EMBEDDING, STORAGE, Commands, add_settings, settings_from
from sage_platform.cli.keys import add_command


def add_commands(commands: Commands) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="the MCP memory server for coding agents (streamable HTTP on 127.0.0.1:17800/mcp, or stdio)",
        description="Register it with `claude mcp add sage -- sage mcp --stdio` or "
        "`claude mcp add --transport http sage http://127.0.0.1:17800/mcp --header 'Authorization: Bearer <token>'`.",
    )
    mcp.add_argument("--stdio", action="store_true", help="speak MCP on stdin/stdout instead of HTTP")
    add_settings(mcp, ("mcp_host", "mcp_port", "mcp_no_auth", "memory_max_chars", *STORAGE, *EMBEDDING),
                 renamed={"mcp_host": "--host", "mcp_port": "--port", "mcp_no_auth": "--no-auth"})  # fmt: skip
    mcp.set_defaults(func=_cmd_mcp)
    tokens = mcp.add_subparsers(dest="mcp_command", metavar="token", required=False)
    add_command(tokens, "token", audience="mcp",
                help_text="memory-server tokens: create --user NAME [--admin] | list | revoke ID")  # fmt: skip

    memory = commands.add_parser("memory", help="the memory server's store: status, search, clear")
    actions = memory.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="memories per session, the model and the vector type")
    search = actions.add_parser("search", help="memories nearest in meaning to a query")
    search.add_argument("query", help="the query")
    search.add_argument("--limit", type=int, default=10, help="how many hits (default 10)")
    search.add_argument("--session", help="only this session")
    clear = actions.add_parser("clear", help="delete one session's memories (dry run without --force)")
    clear.add_argument("--session", required=True, help="the session to delete")
    clear.add_argument("--force", action="store_true", help="really delete")
    for sub in (status, search, clear):
        sub.add_argument("--user", help="only this user's memories (clear: whose session; needed if several have it)")
        sub.add_argument("--json", action="store_true", help="print JSON")
        add_settings(sub, STORAGE + EMBEDDING)
        sub.set_defaults(func=_cmd_memory)


def _cmd_mcp(args: argparse.Namespace) -> int:
    from sage_platform.network import check_bind

    settings = settings_from(args)
    if args.stdio:
        from sage_platform.memory_server import serve_stdio

        serve_stdio(settings)
        return 0
    # The memory server always needs tokens, unless --no-auth (loopback only).
    check_bind(settings.mcp_host, keys_configured=True, no_auth=settings.mcp_no_auth,
               keys_setting="SAGE_MCP_TOKENS", flag="--no-auth")  # fmt: skip
    from sage_platform.memory_server import serve_http

    print(f"Sage memory server on http://{settings.mcp_host}:{settings.mcp_port}/mcp", file=sys.stderr)
    serve_http(settings)
    return 0


def _cmd_memory(args: argparse.Namespace) -> int:
    from sage_platform.memory_server.server import MemoryService

    memory = MemoryService.from_settings(settings_from(args))
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
