"""Coding-agent hooks: context injected on every prompt, every turn saved, with no tool call by the model.

Claude Code (and clients with the same hook protocol) runs a command with the event's JSON on stdin.
``user-prompt-submit`` asks the memory server's ``get_context`` for the prompt and prints what fits the
token budget (the client adds stdout to the model's context). ``stop`` reads the session's transcript,
takes the last user prompt and the assistant's text after it, and saves them with
``save_conversation``; its idempotency key is the prompt's id in the transcript, so a hook that fires
twice stores one memory. Both talk to a running memory server over MCP with the user's token, and
neither ever blocks the client: a failure is one line on stderr and exit code 0.

Usage::

    context = prompt_context({"prompt": "How do we deploy?", ...}, url, token, max_tokens=1500)
    saved = save_last_turn({"session_id": "…", "transcript_path": "…/x.jsonl"}, url, token)
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp import ClientSession

CONTEXT_HEADER = "Relevant memories from earlier work (Sage memory server):"


@dataclass(frozen=True)
class TranscriptTurn:
    prompt_id: str
    user_prompt: str
    assistant_response: str


def _text(content: Any) -> str:
    """The text of a message's content: a string, or the text blocks of a list (tool blocks left out)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def last_turn(transcript: Path) -> TranscriptTurn | None:
    """The last user prompt of a Claude Code transcript (JSONL) and the assistant's text that followed."""
    prompt: tuple[str, str] | None = None
    answer: list[str] = []
    for line in transcript.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written while we read
        message = entry.get("message") or {}
        text = _text(message.get("content")).strip()
        if entry.get("type") == "user" and text and not entry.get("isMeta"):
            prompt, answer = (str(entry.get("uuid") or len(text)), text), []
        elif entry.get("type") == "assistant" and text and prompt is not None:
            answer.append(text)
    if prompt is None or not answer:
        return None
    return TranscriptTurn(prompt[0], prompt[1], "\n\n".join(answer))


def session_of(payload: dict[str, Any]) -> str:
    """The client's session id, within the memory server's session pattern."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "-", str(payload.get("session_id") or "coding-agent"))[:128]


@asynccontextmanager
async def memory_session(url: str, token: str | None) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session with the memory server at ``url``, with the user's token."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def _call(url: str, token: str | None, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with memory_session(url, token) as session:
        result = await session.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(" ".join(getattr(block, "text", "") for block in result.content) or f"{tool} failed")
    if isinstance(result.structured_content, dict):
        content: dict[str, Any] = result.structured_content
        inner = content.get("result")
        return inner if len(content) == 1 and isinstance(inner, dict) else content
    loaded: dict[str, Any] = json.loads(result.content[0].text)  # type: ignore[union-attr]
    return loaded


def prompt_context(payload: dict[str, Any], url: str, token: str | None, *, max_tokens: int) -> str:
    prompt = str(payload.get("prompt") or "").strip()
    if not prompt:
        return ""
    found = asyncio.run(_call(url, token, "get_context", {"query": prompt, "max_tokens": max_tokens}))
    context = str(found.get("context") or "").strip()
    return f"{CONTEXT_HEADER}\n{context}" if context else ""


def save_last_turn(payload: dict[str, Any], url: str, token: str | None) -> dict[str, Any] | None:
    """The saved memory (``created`` false when this turn was saved before), or None: no finished turn."""
    path = payload.get("transcript_path")
    if not path or not Path(str(path)).expanduser().is_file():
        raise FileNotFoundError(f"no transcript at {path!r}")
    turn = last_turn(Path(str(path)).expanduser())
    if turn is None:
        return None
    session = session_of(payload)
    arguments = {
        "user_input": turn.user_prompt,
        "assistant_response": turn.assistant_response,
        "session_id": session,
        "metadata": {"source": "coding-agent hook", "cwd": payload.get("cwd")},
        "idempotency_key": f"hook:{session}:{turn.prompt_id}"[:200],
    }
    return asyncio.run(_call(url, token, "save_conversation", arguments))
