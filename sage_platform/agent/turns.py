"""What a session's history is made of: stored messages, finished runs, and a turn (both, to save).

Usage::

    turn = Turn("s1", "alice", [StoredMessage({"role": "user", "content": "hi"}, 5)],
                FinishedRun("r1", "completed", events, started_at))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TITLE_CHARS = 200


def session_title(text: str) -> str:
    """A session's title from its first question: its start, without NUL (no database text holds one)."""
    return text.replace("\x00", "")[:TITLE_CHARS]


@dataclass
class StoredMessage:
    message: dict[str, Any]
    tokens: int
    seq: int = 0


@dataclass
class History:
    messages: list[StoredMessage] = field(default_factory=list)
    summary: str | None = None
    summary_upto: int = 0


@dataclass
class FinishedRun:
    run_id: str
    status: str
    events: list[dict[str, Any]]
    started_at: float


@dataclass
class Turn:
    session_id: str
    user_id: str
    messages: list[StoredMessage]
    run: FinishedRun
    title: str = ""
