"""The ``rag_answers`` asset's pipeline: every stored golden question, retrieved, answered, stored.

The same pipeline runs in the asset, from ``sage pipeline run rag_answers`` and in any environment:
``TableSource`` (eval_questions) → the configured retriever (``SAGE_RETRIEVER``) → ``KeepUnchangedAnswers``
→ ``QAPromptor`` + ``OpenAIGenerator`` when an LLM is configured, else ``ExtractiveGenerator`` → the stored
row (answer, top documents, latency, tokens) → ``TableSink`` replacing ``rag_answers`` in one transaction.

A question whose answerer, text and retrieved context are what they were when it was last answered keeps
its stored answer (``reused``): a re-run after a small edit calls the model only for the questions the
edit reached.

Usage::

    env = LocalEnvironment("rag_answers")
    build_rag_answers(env, Settings())
    result = env.submit()
"""

from __future__ import annotations

from typing import Any

from sage_platform.config import Settings
from sage_platform.dataflow.environment import BaseEnvironment
from sage_platform.dataflow.functions import MapFunction
from sage_platform.dataflow.library import (
    DenseRetriever,
    ElasticsearchRetriever,
    ExtractiveGenerator,
    HybridRetriever,
    OpenAIGenerator,
    QAPromptor,
    SparseRetriever,
    TableSink,
    TableSource,
)
from sage_platform.dataflow.library._platform import platform_for, record_hit
from sage_platform.dataflow.pipeline import DataStream
from sage_platform.generation.prompts import SYSTEM_PROMPT
from sage_platform.hashing import json_hash
from sage_platform.llm_clients import default_model_choice
from sage_platform.platform import Platform
from sage_platform.retrieval.types import ranked_doc_ids
from sage_platform.tokenization import TokenCounter

RETRIEVERS = {"dense": DenseRetriever, "sparse": SparseRetriever, "hybrid": HybridRetriever,
              "elasticsearch": ElasticsearchRetriever}  # fmt: skip
CHUNKS_PER_DOC_RANK = 3  # fetch this many chunks per wanted document rank, so the doc ranking fills
RANKING_DEPTH = 10
COLUMNS = ["question_id", "answer", "answerer", "retrieved_chunk_ids", "retrieved_doc_ids", "latency_ms",
           "prompt_tokens", "completion_tokens", "context_tokens", "retrieved_tokens", "context_hash",
           "reused"]  # fmt: skip


def answerer_identity(settings: Settings) -> dict[str, Any]:
    """What an answer depends on besides its question and context: a change here answers every question again."""
    choice = default_model_choice(settings)
    if choice is None:
        return {"answerer": "extractive", "embedding_model": settings.embedding_model}
    return {"answerer": "llm", "model": choice.model, "base_url": choice.base_url, "max_tokens": choice.max_tokens,
            "temperature": choice.temperature, "top_p": choice.top_p, "system_prompt": SYSTEM_PROMPT}  # fmt: skip


class KeepUnchangedAnswers(MapFunction):
    """Marks each record with the hash of what its answer depends on; one whose stored answer has the same
    hash gets that answer back (``reused``), and the promptor and generator pass it on untouched."""

    requires = frozenset({"question_id", "query", "retrieved"})
    provides = frozenset({"context_hash", "reused"})

    def open(self) -> None:
        with platform_for(self.config).db.connect() as conn:
            rows = conn.execute(
                """SELECT question_id, context_hash, answer, answerer, latency_ms, prompt_tokens, completion_tokens,
                          context_tokens FROM rag_answers WHERE context_hash IS NOT NULL"""
            ).fetchall()
        self._stored = {row[0]: row[1:] for row in rows}

    def execute(self, data: Any) -> Any:
        hits = [record_hit(h) for h in data["retrieved"]][: int(self.config["answer_k"])]
        digest = json_hash({"answerer": self.config["answerer"], "query": data["query"],
                            "context": [[h.chunk_id, h.text] for h in hits]})  # fmt: skip
        stored = self._stored.get(data["question_id"])
        if stored is None or stored[0] != digest:
            return {**data, "context_hash": digest, "reused": False}
        _, answer, answerer, latency, prompt_tokens, completion_tokens, context_tokens = stored
        return {**data, "context_hash": digest, "reused": True, "answer": answer, "generator": answerer,
                "latency_ms": latency, "context_tokens": context_tokens,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}}  # fmt: skip


class AnswerRow(MapFunction):
    """A generated record as a ``rag_answers`` row: the answer's chunks, the ranked documents, the costs."""

    requires = frozenset({"question_id", "retrieved", "answer", "generator", "latency_ms", "usage"})
    provides = frozenset(COLUMNS)

    def open(self) -> None:
        self._counter = TokenCounter.local()

    def execute(self, data: Any) -> Any:
        answer_k = int(self.config["answer_k"])
        hits = [record_hit(h) for h in data["retrieved"]]
        return {
            "question_id": data["question_id"], "query": data["query"], "answer": data["answer"],
            "answerer": data["generator"], "retrieved_chunk_ids": [h.chunk_id for h in hits[:answer_k]],
            "retrieved_doc_ids": ranked_doc_ids(hits, RANKING_DEPTH), "latency_ms": data["latency_ms"],
            "prompt_tokens": data["usage"]["prompt_tokens"], "completion_tokens": data["usage"]["completion_tokens"],
            "context_tokens": data.get("context_tokens"),
            "retrieved_tokens": sum(self._counter.count(h.text) for h in hits[:answer_k]),
            "context_hash": data.get("context_hash"), "reused": bool(data.get("reused")),
        }  # fmt: skip


def build_rag_answers(env: BaseEnvironment, settings: Settings, *, platform: Platform | None = None) -> DataStream:
    """The pipeline on ``env``; ``platform`` (in process only) lets the steps share the caller's parts."""
    shared: dict[str, Any] = {"platform": platform} if platform is not None else {}
    answer_k = settings.retrieval_k
    depth = max(answer_k, RANKING_DEPTH * CHUNKS_PER_DOC_RANK)
    query = "SELECT question_id, question AS query FROM eval_questions ORDER BY position"
    stream = env.from_source(TableSource, {**shared, "query": query})
    stream = stream.map(RETRIEVERS[settings.retriever], {**shared, "top_k": depth}, batch_size=64)
    stream = stream.map(KeepUnchangedAnswers, {**shared, "answer_k": answer_k, "answerer": answerer_identity(settings)})
    if settings.llm_configured:
        stream = stream.map(QAPromptor, {"context_k": answer_k}).map(OpenAIGenerator, shared, parallelism=4)
    else:
        stream = stream.map(ExtractiveGenerator, {**shared, "context_k": answer_k}, batch_size=64)
    return stream.map(AnswerRow, {"answer_k": answer_k}).sink(
        TableSink, {**shared, "table": "rag_answers", "columns": COLUMNS, "replace": True}
    )
