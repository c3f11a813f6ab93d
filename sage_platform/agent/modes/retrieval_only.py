"""Retrieval-only answers: what the agent does when no language model is configured.

It calls ``knowledge_search`` with the user's question, picks the retrieved sentences most similar to it
(the extractive answerer ``rag_answers`` uses without an LLM), cites the documents they come from, and
streams that as the answer. The ``final_answer`` carries ``metadata.mode = "retrieval_only"`` and the
reason, so clients can label it; configuring a model switches to the full agent.

Usage::

    await run_retrieval_only(ctx, lead, messages, answer=extractive_answer)
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from sage_platform.agent.engine import Member, RunContext
from sage_platform.agent.messages import new_id
from sage_platform.retrieval.types import Hit

NO_LLM = (
    "no language model is configured, so this answer is the passages retrieved for your question; set "
    "SAGE_DEFAULT_LLM_MODEL_NAME and SAGE_DEFAULT_LLM_API_BASE_URL for the full agent"
)
Answer = Callable[[str, list[Hit]], str]


def _question(messages: list[dict[str, Any]]) -> str:
    last = next((m for m in reversed(messages) if m["role"] == "user"), {"content": ""})
    content = last.get("content") or ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _hits(result: str) -> list[Hit]:
    found = json.loads(result).get("hits", [])
    return [Hit(h["chunk_id"], h["doc_id"], float(h["score"]), h["text"], {"source": h.get("source")}) for h in found]


def cite(answer: str, hits: list[Hit]) -> str:
    """The answer with the documents its sentences come from, in square brackets, once each."""
    sources = [h.doc_id for h in hits if any(s and s in h.text for s in re.split(r"(?<=[.!?])\s+", answer))]
    return f"{answer} " + " ".join(f"[{d}]" for d in dict.fromkeys(sources)) if sources else answer


async def run_retrieval_only(ctx: RunContext, lead: Member, messages: list[dict[str, Any]], *, answer: Answer) -> None:
    question = _question(messages).strip()
    call = {"id": "call_0", "type": "function",
            "function": {"name": "knowledge_search", "arguments": json.dumps({"query": question})}}  # fmt: skip
    [ok] = await ctx.call_tools(lead, messages, [call])
    result = messages[-1]["content"]
    if not ok:
        text = f"I could not search the knowledge base ({result}), and {NO_LLM}."
    else:
        hits = _hits(result)
        found = await asyncio.to_thread(answer, question, hits) if hits else ""
        text = cite(found, hits) if found else "Nothing in the knowledge base matches this question."
    message_id = new_id()
    for word in re.findall(r"\S+\s*", text):
        ctx.publish("assistant_text", lead.name, content=word, message_id=message_id)
    ctx.produced.append({"role": "assistant", "content": text})
    ctx.publish("final_answer", lead.name, content=text, message_id=message_id,
                metadata={"mode": "retrieval_only", "reason": NO_LLM})  # fmt: skip
