"""``sage chat``: a terminal client of the agent server's ``/api/stream``, local or remote.

Tokens are shown as they arrive and rendered as Markdown (``rich``); tool calls and results, plans and
stage summaries are one line each. Line editing and history come from ``readline`` (history kept in
the data folder); a line ending in ``\\`` continues on the next. Ctrl-C stops the run, not the program;
Ctrl-D leaves.

Usage::

    sage chat [--url http://127.0.0.1:8080] [--key KEY] [--mode simple|multi|team] [--session ID]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mimetypes
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sage_platform.cli._flags import Commands, add_settings, settings_from

HELP = """commands:
  /new               start a new session          /sessions        your sessions
  /resume ID         continue a session            /mode M          simple | multi | team
  /upload PATH       add a file to this session    /files           this session's files
  /stop              stop this session's run       /help, /quit
Ctrl-C stops a running answer; Ctrl-D leaves. End a line with \\ to go on writing."""
MODES = ("simple", "multi", "team")
TEAM = [{"name": "researcher", "description": "Looks things up in the knowledge base."},
        {"name": "writer", "description": "Writes the answer from what was found."}]  # fmt: skip


class ServerError(RuntimeError):
    pass


class Client:
    """The agent server's HTTP API, as this user (stdlib only: urllib streams NDJSON line by line)."""

    def __init__(self, url: str, key: str | None) -> None:
        self.url = url.rstrip("/")
        self.key = key

    def _request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> Any:
        headers = {"Content-Type": content_type, "Accept": "application/json, application/x-ndjson"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=600)
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError):
                detail = json.loads(detail).get("detail", detail)
            raise ServerError(f"{error.code}: {detail}") from None
        except urllib.error.URLError as error:
            raise ServerError(f"cannot reach {self.url}: {error.reason}") from None

    def json(self, method: str, path: str, payload: Any = None) -> Any:
        body = json.dumps(payload).encode() if payload is not None else None
        with self._request(method, path, body) as response:
            return json.loads(response.read() or b"null")

    def stream(self, payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
        response = self._request("POST", "/api/stream", json.dumps(payload).encode())
        with response:
            for line in response:
                if line.strip():
                    yield json.loads(line)

    def upload(self, session_id: str, path: Path) -> Any:
        boundary = uuid.uuid4().hex
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        name = path.name.replace('"', "_")
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="session_id"\r\n\r\n{session_id}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                f"Content-Type: {kind}\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
        with self._request("POST", "/api/files", body, f"multipart/form-data; boundary={boundary}") as response:
            return json.loads(response.read())


class Chat:
    def __init__(self, client: Client, console: Any, mode: str, session_id: str | None) -> None:
        self.client = client
        self.console = console
        self.mode = mode
        self.session_id = session_id or uuid.uuid4().hex

    def body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": text}], "session_id": self.session_id}
        if self.mode != "simple":
            body["agent_mode"] = self.mode
        if self.mode == "team":
            body["custom_sub_agents"] = TEAM
        return body

    def ask(self, text: str) -> None:
        from rich.live import Live
        from rich.markdown import Markdown

        answer: list[str] = []
        messages = self.client.stream(self.body(text))
        try:
            with Live(Markdown(""), console=self.console, refresh_per_second=12, transient=False) as live:
                for message in messages:
                    kind = message.get("type")
                    if kind == "assistant_text" and message.get("agent_name") in (None, "sage"):
                        answer.append(str(message.get("content") or ""))
                        live.update(Markdown("".join(answer)))
                    elif kind == "final_answer":
                        live.update(Markdown(str(message.get("content") or "")))
                        if (message.get("metadata") or {}).get("mode") == "retrieval_only":
                            self.console.print("[yellow]retrieval only: no language model is configured[/]")
                    elif kind == "assistant_text":
                        continue  # a sub-agent's or a plan step's words: its summary line says what it found
                    else:
                        line = describe(message)
                        if line:
                            live.console.print(line)
        except KeyboardInterrupt:
            self.stop()
            self.console.print("[red]stopped[/]")
        finally:
            messages.close()  # type: ignore[attr-defined]

    def stop(self) -> None:
        with contextlib.suppress(ServerError):  # it had ended already
            self.client.json("POST", f"/api/sessions/{self.session_id}/interrupt")

    def command(self, line: str) -> bool:
        """Runs a /command; False means quit."""
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/new":
            self.session_id = uuid.uuid4().hex
            self.console.print(f"new session {self.session_id}")
        elif name == "/sessions":
            for row in self.client.json("GET", "/api/sessions"):
                mark = "*" if row["session_id"] == self.session_id else " "
                self.console.print(f"{mark} {row['session_id']}  {row['message_count']:>3} messages  {row['title']}")
        elif name == "/resume" and argument:
            history = self.client.json("GET", f"/api/sessions/{urllib.parse.quote(argument)}/messages")["messages"]
            self.session_id = argument
            for message in history[-6:]:
                if message["role"] in ("user", "assistant") and message.get("content"):
                    self.console.print(f"[dim]{message['role']}:[/] {message['content']}")
            self.console.print(f"resumed session {argument} ({len(history)} messages)")
        elif name == "/mode" and argument in MODES:
            self.mode = argument
            self.console.print(f"mode {argument}")
        elif name == "/upload" and argument:
            record = self.client.upload(self.session_id, Path(argument).expanduser())
            self.console.print(f"uploaded {record['name']} (version {record['version']}, {record['size']} bytes)")
        elif name == "/files":
            files = self.client.json("GET", f"/api/files?session_id={urllib.parse.quote(self.session_id)}")
            for f in files:
                self.console.print(
                    f"{f['file_id']}  {f['name']} v{f['version']}  {f['content_type']}  {f['size']} bytes"
                )
            if not files:
                self.console.print("no files in this session")
        elif name == "/stop":
            self.stop()
            self.console.print("stop sent")
        else:
            self.console.print(HELP)
        return True


def describe(message: dict[str, Any]) -> str | None:
    """One line for everything but the answer's text."""
    kind, content, agent = message.get("type"), message.get("content"), message.get("agent_name")
    who = f"[magenta]\\[{agent}][/] " if agent not in (None, "sage") else ""
    if kind == "tool_call":
        calls = ", ".join(f"{c['function']['name']}({_short(c['function']['arguments'])})"
                          for c in message.get("tool_calls") or [])  # fmt: skip
        return f"{who}[cyan]→ {calls}[/]"
    if kind == "tool_call_result" and isinstance(content, dict):
        mark = "[green]✓[/]" if content.get("ok") else "[red]✗[/]"
        return f"{who}{mark} {content.get('name')}: {_short(str(content.get('result')))}"
    if kind == "task_analysis" and isinstance(content, dict):
        steps = "\n".join(f"  {s['index']}. {s['description']}" for s in content.get("steps", []))
        return f"[bold]plan[/] {content.get('analysis', '')}\n{steps}"
    if kind == "stage_summary" and isinstance(content, dict):
        label = f"step {content['step']}" if "step" in content else str(content.get("agent"))
        return f"{who}[bold]{label}[/] {content.get('status', 'done')}: {_short(str(content.get('summary')))}"
    if kind in ("reasoning_content", "user_input", "loop_break"):
        return f"{who}[dim]{kind.replace('_', ' ')}: {_short(str(content))}[/]"
    if kind == "error":
        return f"[red]error: {content}[/]"
    return None


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read(prompt: str) -> str:
    """One message: a line, or several when each but the last ends with a backslash."""
    lines = [input(prompt)]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        lines.append(input("... "))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import readline

    from rich.console import Console

    settings = settings_from(args)
    key = settings.api_key.get_secret_value() if settings.api_key else None
    client = Client(args.url or f"http://{settings.host}:{settings.port}", key)
    history = settings.data_dir.expanduser() / "chat_history"
    with contextlib.suppress(OSError):  # no history yet
        readline.read_history_file(history)
    console = Console()
    chat = Chat(client, console, args.mode, args.session)
    console.print(f"Sage chat on {client.url}, session {chat.session_id}, mode {chat.mode}; /help for commands")
    try:
        while True:
            try:
                text = _read("you> ").strip()
            except KeyboardInterrupt:
                console.print()
                continue
            except EOFError:
                console.print()
                return 0
            if not text:
                continue
            try:
                if text.startswith("/"):
                    if not chat.command(text):
                        return 0
                else:
                    chat.ask(text)
            except (ServerError, OSError) as error:
                console.print(f"[red]{error}[/]")
    finally:
        history.parent.mkdir(parents=True, exist_ok=True)
        readline.set_history_length(1000)
        readline.write_history_file(history)


def add_command(commands: Commands) -> None:
    chat = commands.add_parser(
        "chat", help="chat with the agent server in the terminal (streamed, Markdown, tools, files)",
        description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    chat.add_argument("--url", help="the agent server (default http://SAGE_HOST:SAGE_PORT)")
    chat.add_argument("--mode", choices=MODES, default="simple", help="agent mode to start in (simple)")
    chat.add_argument("--session", help="continue this session")
    add_settings(chat, ("api_key", "host", "port", "data_dir"), renamed={"api_key": "--key"})
    chat.set_defaults(func=run)
