"""Prompt builders: ``QAPromptor`` (grounded question answering) and ``ChatPromptor`` (conversations).

Both add ``prompt`` (chat messages) and ``context_tokens`` (tokens of the passages put in the prompt).

Usage::

    .map(QAPromptor)                        # the platform's grounded prompt over the top context_k passages
    .map(QAPromptor, {"template": "Answer from the context: {context}\\nQ: {query}\\nA:"})
    .map(ChatPromptor, {"system": "You are terse."})   # uses the record's ``history`` if present
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from sage_platform.dataflow.functions import MapFunction
from sage_platform.dataflow.library._platform import already_answered, record_hit
from sage_platform.generation.prompts import SYSTEM_PROMPT, rag_messages
from sage_platform.tokenization import TokenCounter

DEFAULT_CONTEXT_K = 5


def template_fields(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


class _Promptor(MapFunction):
    provides = frozenset({"prompt", "context_tokens"})

    def open(self) -> None:
        self._context_k = int(self.config.get("context_k", DEFAULT_CONTEXT_K))
        self._counter = TokenCounter.local()

    def _passages(self, record: Mapping[str, Any]) -> list[str]:
        return [str(text) for text in (record.get("context") or [])][: self._context_k]


class QAPromptor(_Promptor):
    """``template`` (optional) names record fields in braces; ``{context}`` is the passages joined by
    blank lines. Without a template the prompt is the platform's own (numbered passages with their
    document ids, the same one ``rag_answers`` sends). ``system`` adds a system message."""

    @classmethod
    def fields_in(cls, config: Mapping[str, Any]) -> frozenset[str]:
        template = config.get("template")
        return frozenset({"query", "context"}) | (template_fields(template) if template else frozenset())

    def execute(self, data: Any) -> Any:
        if already_answered(data):
            return data
        passages = self._passages(data)
        template = self.config.get("template")
        if template is None:
            hits = [record_hit(h) for h in (data.get("retrieved") or [])][: self._context_k]
            messages = rag_messages(str(data["query"]), hits) if hits else _plain(str(data["query"]))
        else:
            values = {**data, "context": "\n\n".join(passages), "query": data["query"]}
            try:
                content = template.format_map(values)
            except KeyError as missing:
                raise KeyError(f"QAPromptor's template names {missing}, which the record lacks") from None
            messages = [{"role": "user", "content": content}]
            if self.config.get("system"):
                messages.insert(0, {"role": "system", "content": self.config["system"]})
        tokens = sum(self._counter.count(p) for p in passages)
        return {**data, "prompt": messages, "context_tokens": tokens}


def _plain(query: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": f"Question: {query}"}]


class ChatPromptor(_Promptor):
    """A conversation: ``system`` (default the platform's grounded instruction) with the passages
    appended when the record has ``context``, then the record's ``history`` messages, then ``query``."""

    requires = frozenset({"query"})

    def execute(self, data: Any) -> Any:
        passages = self._passages(data)
        system = str(self.config.get("system", SYSTEM_PROMPT))
        if passages:
            system += "\n\nContext:\n" + "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))
        history = [dict(m) for m in (data.get("history") or [])]
        messages = [{"role": "system", "content": system}, *history, {"role": "user", "content": str(data["query"])}]
        tokens = sum(self._counter.count(p) for p in passages)
        return {**data, "prompt": messages, "context_tokens": tokens}
