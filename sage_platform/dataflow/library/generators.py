"""Generators: ``OpenAIGenerator`` (any OpenAI-compatible server: OpenAI, vLLM, llama.cpp, Ollama) and
``ExtractiveGenerator`` (no model server: the platform's extractive answerer over the passages).

Each adds ``answer``, ``generator`` (which produced it), ``latency_ms`` and ``usage``
(``prompt_tokens``, ``completion_tokens``). A record already answered (``reused``: a kept answer whose
context did not change) passes through untouched.

Usage::

    .map(QAPromptor).map(OpenAIGenerator, {"model": "gpt-4o-mini"}, parallelism=8)
    .map(OpenAIGenerator, {"model": "Qwen/Qwen2.5-7B-Instruct", "base_url": "http://localhost:8000/v1"})
    .map(ExtractiveGenerator)                  # make run's default: no LLM needed
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from sage_platform.dataflow.functions import MapFunction
from sage_platform.dataflow.library._platform import already_answered, platform_for, record_hit
from sage_platform.generation.extractive import ExtractiveAnswerer
from sage_platform.llm_clients import default_model_choice, sync_client
from sage_platform.tokenization import TokenCounter

GENERATOR_FIELDS = frozenset({"answer", "generator", "latency_ms", "usage"})


class OpenAIGenerator(MapFunction):
    """Chat completions for the record's ``prompt``. Config: ``model``, ``base_url``, ``api_key``,
    ``max_tokens``, ``temperature``, ``top_p``; each unset one comes from the platform's default LLM
    (``SAGE_DEFAULT_LLM_*``). Retries and timeouts are the platform's (``SAGE_DEFAULT_LLM_MAX_RETRIES``,
    ``_TIMEOUT``). Raise ``parallelism`` for concurrent requests."""

    requires = frozenset({"prompt"})
    provides = GENERATOR_FIELDS
    default_base_url: ClassVar[str | None] = None

    def open(self) -> None:
        settings = platform_for(self.config).settings
        choice = default_model_choice(settings)
        model = self.config.get("model") or (choice.model if choice else None)
        if not model:
            raise ValueError(f"{type(self).__name__} needs a model: set 'model' or SAGE_DEFAULT_LLM_MODEL_NAME")
        self._model: str = str(model)
        base_url = self.config.get("base_url") or (choice.base_url if choice else None) or self.default_base_url
        api_key = self.config.get("api_key") or (choice.api_key if choice else None)
        self._client = sync_client(settings, base_url, api_key)
        self._sampling = {
            "max_tokens": int(self.config.get("max_tokens", choice.max_tokens if choice else settings.default_llm_max_tokens)),
            "temperature": float(self.config.get("temperature", choice.temperature if choice else settings.default_llm_temperature)),
            "top_p": float(self.config.get("top_p", choice.top_p if choice else settings.default_llm_top_p)),
        }  # fmt: skip
        self._counter = TokenCounter.local()

    def execute(self, data: Any) -> Any:
        if already_answered(data):
            return data
        began = time.perf_counter()
        response = self._client.chat.completions.create(
            model=self._model,
            messages=data["prompt"],
            max_tokens=int(self._sampling["max_tokens"]),
            temperature=self._sampling["temperature"],
            top_p=self._sampling["top_p"],
        )
        latency = (time.perf_counter() - began) * 1000
        answer = (response.choices[0].message.content or "").strip()
        usage = response.usage
        if usage is not None:
            counts = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
        else:  # some servers send no usage: count with the local tokenizer
            counts = {"prompt_tokens": sum(self._counter.count_message(m) for m in data["prompt"]),
                      "completion_tokens": self._counter.count(answer)}  # fmt: skip
        return {**data, "answer": answer, "generator": f"llm ({self._model})", "latency_ms": latency, "usage": counts}


class VLLMGenerator(OpenAIGenerator):
    """``OpenAIGenerator`` pointed at a vLLM server's OpenAI API (default ``http://localhost:8000/v1``)."""

    default_base_url = "http://localhost:8000/v1"


class ExtractiveGenerator(MapFunction):
    """The sentences of the top passages most similar to the query (the platform's extractive answerer,
    local embedding model). Config: ``max_sentences`` (2), ``context_chunks`` (3), ``context_k`` (the
    passages it may use, default all retrieved). Batched: one embedding call per batch."""

    requires = frozenset({"query", "retrieved"})
    provides = GENERATOR_FIELDS | {"context_tokens"}
    batch_size = 32

    def open(self) -> None:
        embedder = platform_for(self.config).embedder
        self._answerer = ExtractiveAnswerer(embedder, max_sentences=int(self.config.get("max_sentences", 2)),
                                            context_chunks=int(self.config.get("context_chunks", 3)))  # fmt: skip
        self._counter = TokenCounter.local()

    def execute_batch(self, records: list[Any]) -> list[Any]:
        todo = [record for record in records if not already_answered(record)]
        answered = iter(self._answer(todo) if todo else [])
        return [record if already_answered(record) else next(answered) for record in records]

    def _answer(self, records: list[Any]) -> list[Any]:
        began = time.perf_counter()
        limit = self.config.get("context_k")
        hits = [[record_hit(h) for h in record["retrieved"]][:limit] for record in records]
        answers = self._answerer.answer_many([str(r["query"]) for r in records], hits)
        latency = (time.perf_counter() - began) * 1000 / max(1, len(records))  # the batch's time, shared
        out = []
        for record, found, answer in zip(records, hits, answers, strict=True):
            used = sum(self._counter.count(h.text) for h in found[: self._answerer.context_chunks])
            usage = {"prompt_tokens": self._counter.count(str(record["query"])) + used,
                     "completion_tokens": self._counter.count(answer)}  # fmt: skip
            out.append({**record, "answer": answer, "generator": self._answerer.label, "latency_ms": latency,
                        "usage": usage, "context_tokens": used})  # fmt: skip
        return out


LocalGenerator = ExtractiveGenerator  # the original's "local generator": no model server, no download
