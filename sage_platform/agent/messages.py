"""The NDJSON stream's messages: one JSON object per line, ending with ``stream_end``.

Usage::

    line = encode(stream_message("assistant_text", session_id, content="Hel", message_id=mid))
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any, Literal

MessageType = Literal[
    "user_input",
    "assistant_text",
    "reasoning_content",
    "tool_call",
    "tool_call_result",
    "tool_progress",
    "task_analysis",
    "stage_summary",
    "final_answer",
    "token_usage",
    "loop_break",
    "error",
]
ROLE_OF: dict[str, str] = {
    "user_input": "user",
    "assistant_text": "assistant",
    "reasoning_content": "assistant",
    "tool_call": "assistant",
    "tool_call_result": "tool",
    "tool_progress": "tool",
    "task_analysis": "assistant",
    "stage_summary": "assistant",
    "final_answer": "assistant",
    "token_usage": "system",
    "loop_break": "system",
    "error": "system",
}


_ids = random.Random()  # seeded from the OS once; ids need to be unique, not secret


def new_id() -> str:
    """A random 128-bit id for messages and runs, without a system call each (uuid4 makes one)."""
    return uuid.UUID(int=_ids.getrandbits(128), version=4).hex


def stream_message(
    kind: MessageType,
    session_id: str,
    *,
    content: Any = None,
    message_id: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_call_id: str | None = None,
    agent_name: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``agent_name`` says which agent spoke (a team's sub-agents); ``metadata`` carries step numbers and such."""
    return {
        "type": kind,
        "role": ROLE_OF[kind],
        "content": content,
        "tool_calls": tool_calls,
        "tool_call_id": tool_call_id,
        "message_id": message_id or new_id(),
        "session_id": session_id,
        "agent_name": agent_name,
        "metadata": metadata,
        "timestamp": time.time(),
    }


def stream_end(
    session_id: str, total_stream_count: int, *, saved: bool = True, trace_id: str | None = None
) -> dict[str, Any]:
    """The last message of every stream; ``saved`` says whether the turn is in the session's history, and
    ``trace_id`` (when tracing is on) names the run's trace."""
    end = {"type": "stream_end", "session_id": session_id, "total_stream_count": total_stream_count, "saved": saved}
    return end | {"trace_id": trace_id} if trace_id else end


_LINE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one encoder, not one per call


def encode(message: dict[str, Any]) -> bytes:
    return _LINE.encode(message).encode() + b"\n"
