"""Past memories formatted for prompt injection, within a token budget.

Usage::

    text, used = format_context(hits, TokenCounter.local(), max_tokens=2000)
"""

from __future__ import annotations

from sage_platform.memory_store import MemoryHit
from sage_platform.tokenization import TokenCounter

TRUNCATED = " …[truncated]"
HEADER = "Relevant memories from earlier conversations (most relevant first):"


def render(hit: MemoryHit) -> str:
    when = hit.created_at.strftime("%Y-%m-%d %H:%M")
    return (
        f"[{when} · session {hit.session_id} · similarity {hit.similarity:.2f}]\n"
        f"User: {hit.user_input.strip()}\nAssistant: {hit.assistant_response.strip()}"
    )


def format_context(hits: list[MemoryHit], counter: TokenCounter, max_tokens: int) -> tuple[str, list[MemoryHit]]:
    """The header and as many whole memories as fit; one too long alone is cut to fit, marked."""
    if not hits:
        return "", []
    parts: list[str] = [HEADER]
    used: list[MemoryHit] = []
    spent = counter.count(HEADER)
    for hit in hits:
        block = render(hit)
        cost = counter.count(block) + 2
        if spent + cost > max_tokens:
            if used:
                break
            block = _cut(block, counter, max_tokens - spent - 2 - counter.count(TRUNCATED)) + TRUNCATED
            cost = counter.count(block) + 2
            if spent + cost > max_tokens:
                break
        parts.append(block)
        used.append(hit)
        spent += cost
    return ("\n\n".join(parts) if used else ""), used


def _cut(text: str, counter: TokenCounter, budget: int) -> str:
    """The longest prefix (on word boundaries) within ``budget`` tokens."""
    words = text.split(" ")
    low, high = 0, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        if counter.count(" ".join(words[:middle])) <= budget:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low])
