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
    tokens = mcp.add_subparsers(dest="mcp_command", metavar="token|connect", required=False)
    add_command(tokens, "token", audience="mcp",
                help_text="memory-server tokens: create --user NAME [--admin] | list | revoke ID")  # fmt: skip
    connect = tokens.add_parser(
        "connect",
        help="register the memory server with a coding agent: a token for the user, and the exact command",
        description="`sage mcp connect claude --user ada` issues a token for ada and runs `claude mcp add` with it "
        "(or prints the command when claude is not installed); `sage mcp connect print` prints an mcpServers entry "
        "for any other client. Then add the hooks printed at the end (context on every prompt, every turn saved).",
    )
    connect.add_argument("client", choices=["claude", "print"], help="claude, or print a generic client config")
    connect.add_argument("--user", required=True, help="the user the token acts for")
    connect.add_argument("--name", default="sage", help="the server's name in the client (sage)")
    add_settings(connect, ("mcp_url", "mcp_host", "mcp_port", *STORAGE))
    connect.set_defaults(func=_cmd_connect)

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
    hook = actions.add_parser(
        "hook",
        help="coding-agent hooks: user-prompt-submit prints context for the prompt; stop saves the turn",
        description="Reads the hook's JSON on stdin (Claude Code's hook protocol) and talks to the memory server "
        "at SAGE_MCP_URL with SAGE_MCP_TOKEN. Never blocks the client: failures are one line on stderr, exit 0.",
    )
    hook.add_argument("event", choices=["user-prompt-submit", "stop"], help="the hook event")
    hook.add_argument("--max-tokens", type=int, default=1500, help="context budget of user-prompt-submit (1500)")
    add_settings(hook, ("mcp_url", "mcp_token", "mcp_host", "mcp_port"))
    hook.set_defaults(func=_cmd_hook)
    for sub in (status, search, clear):
        sub.add_argument("--user", help="only this user's memories (clear: whose session; needed if several have it)")
        sub.add_argument("--json", action="store_true", help="print JSON")
        add_settings(sub, STORAGE + EMBEDDING)
        sub.set_defaults(func=_cmd_memory)


HOOKS = {
    "hooks": {
        "UserPromptSubmit": [{"hooks": [{"type": "command", "command": "sage memory hook user-prompt-submit"}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "sage memory hook stop"}]}],
    }
}


def _cmd_connect(args: argparse.Namespace) -> int:
    import shlex
    import shutil
    import subprocess

    from sage_platform.db import Database
    from sage_platform.identity import issue_key

    settings = settings_from(args)
    url = settings.memory_server_url
    issued = issue_key(Database.from_settings(settings), args.user, audience="mcp")
    header = f"Authorization: Bearer {issued.secret}"
    print(f"issued memory-server token {issued.key_id} for {issued.user_id}", file=sys.stderr)
    if args.client == "print":
        print(json.dumps({"mcpServers": {args.name: {"type": "http", "url": url, "headers": {
            "Authorization": f"Bearer {issued.secret}"}}}}, indent=2))  # fmt: skip
    else:
        command = ["claude", "mcp", "add", "--transport", "http", args.name, url, "--header", header]
        if shutil.which("claude") is None:
            print("claude is not installed here; run this where it is:", file=sys.stderr)
            print(shlex.join(command))
        else:
            subprocess.run(command, check=True)
            print(f"registered {args.name} with Claude Code: {url}", file=sys.stderr)
    print("\nFor context on every prompt and every turn saved, add to .claude/settings.json (with SAGE_MCP_TOKEN "
          "set to the token above in the environment the client runs hooks in):", file=sys.stderr)  # fmt: skip
    print(json.dumps(HOOKS, indent=2), file=sys.stderr)
    return 0


def _cmd_hook(args: argparse.Namespace) -> int:
    from sage_platform.memory_server.hooks import prompt_context, save_last_turn

    settings = settings_from(args)
    token = settings.mcp_token.get_secret_value() if settings.mcp_token else None
    try:
        payload = json.loads(sys.stdin.read() or "{}")
        if args.event == "user-prompt-submit":
            context = prompt_context(payload, settings.memory_server_url, token, max_tokens=args.max_tokens)
            if context:
                print(context)
        else:
            saved = save_last_turn(payload, settings.memory_server_url, token)
            state = "no finished turn" if saved is None else ("saved" if saved.get("created") else "already saved")
            print(f"sage memory hook: {state}", file=sys.stderr)
    except Exception as error:  # a hook must never block the coding agent
        print(f"sage memory hook: {type(error).__name__}: {error}", file=sys.stderr)
    return 0


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
