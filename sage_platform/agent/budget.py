"""Fit a conversation into ``max_model_len`` by the seed's ratios.

The window left after the reply's ``max_tokens`` is shared out: ``context_max_new_message_ratio``
for the new message(s), ``context_active_ratio`` for the newest ``context_recent_turns`` turns
(kept whole), ``context_history_ratio`` for older turns, newest first, with the running summary.
Whatever older history does not fit is handed to the summariser, and ``force_summary`` sends all
of it. Tokens are counted with a real tokenizer (the local embedder's WordPiece vocabulary).

Usage::

    plan = plan_context(history, new_messages, TokenCounter.local(), ContextBudget.from_settings(s, 512))
    prompt = [*plan.kept_messages, *new_messages]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sage_platform.agent.requests import ContextBudgetConfig
from sage_platform.agent.turns import History, StoredMessage
from sage_platform.config import Settings
from sage_platform.tokenization import TokenCounter


class ContextTooLong(ValueError):
    """The new message alone is over its share of the window."""


@dataclass(frozen=True)
class ContextBudget:
    new_message: int
    active: int
    history: int
    recent_turns: int

    @classmethod
    def from_settings(
        cls, settings: Settings, max_tokens: int, config: ContextBudgetConfig | None = None
    ) -> ContextBudget:
        """The server's shares, or those a request's ``context_budget_config`` gives."""
        if config is not None:
            settings = _with_request_shares(settings, config)
        window = settings.max_model_len - max_tokens
        if window <= 0:
            raise ContextTooLong(
                f"max_tokens ({max_tokens}) leaves no room for a prompt in max_model_len ({settings.max_model_len})"
            )
        return cls(
            new_message=int(window * settings.context_max_new_message_ratio),
            active=int(window * settings.context_active_ratio),
            history=int(window * settings.context_history_ratio),
            recent_turns=settings.context_recent_turns,
        )


def _with_request_shares(settings: Settings, config: ContextBudgetConfig) -> Settings:
    update = {
        "max_model_len": config.max_model_len,
        "context_history_ratio": config.history_ratio,
        "context_active_ratio": config.active_ratio,
        "context_max_new_message_ratio": config.max_new_message_ratio,
        "context_recent_turns": config.recent_turns,
    }
    merged = settings.model_copy(update={k: v for k, v in update.items() if v is not None})
    total = merged.context_history_ratio + merged.context_active_ratio + merged.context_max_new_message_ratio
    if total > 1.0 + 1e-9:
        raise ContextTooLong(f"context_budget_config: the context ratios add up to {total:.2f}; they must not exceed 1")
    return merged


@dataclass
class ContextPlan:
    kept: list[StoredMessage] = field(default_factory=list)
    to_summarize: list[StoredMessage] = field(default_factory=list)
    summary: str | None = None
    tokens: int = 0

    @property
    def kept_messages(self) -> list[dict[str, Any]]:
        return [m.message for m in self.kept]


def turns(messages: list[StoredMessage]) -> list[list[StoredMessage]]:
    """Split history at each user message: a turn keeps its tool calls with their results."""
    out: list[list[StoredMessage]] = []
    for message in messages:
        if message.message.get("role") == "user" or not out:
            out.append([])
        out[-1].append(message)
    return out


def check_new_message(tokens: int, budget: ContextBudget) -> None:
    if tokens > budget.new_message:
        raise ContextTooLong(
            f"the new message has {tokens} tokens; its share of the context window is {budget.new_message} "
            "(context_max_new_message_ratio × (max_model_len − max_tokens))"
        )


def plan_context(
    history: History,
    new_tokens: int,
    counter: TokenCounter,
    budget: ContextBudget,
    *,
    force_summary: bool = False,
) -> ContextPlan:
    check_new_message(new_tokens, budget)
    unsummarized = [m for m in history.messages if m.seq > history.summary_upto]
    groups = turns(unsummarized)
    plan = ContextPlan(summary=history.summary)

    active: list[list[StoredMessage]] = []
    used = 0
    while groups and len(active) < budget.recent_turns:
        size = sum(m.tokens for m in groups[-1])
        if used + size > budget.active:
            break
        active.insert(0, groups.pop())
        used += size

    older: list[list[StoredMessage]] = []
    spent = counter.count(history.summary) if history.summary else 0
    if not force_summary:
        while groups:
            size = sum(m.tokens for m in groups[-1])
            if spent + size > budget.history:
                break
            older.insert(0, groups.pop())
            spent += size
    plan.to_summarize = [m for group in groups for m in group]
    plan.kept = [m for group in (*older, *active) for m in group]
    plan.tokens = used + spent + new_tokens
    return plan
