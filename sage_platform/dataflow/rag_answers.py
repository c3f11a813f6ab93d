"""The ``rag_answers`` asset's pipeline: every stored golden question, retrieved, answered, stored.

The same pipeline runs in the asset, from ``sage pipeline run rag_answers`` and in any environment:
``TableSource`` (eval_questions) → the configured retriever (``SAGE_RETRIEVER``) → ``QAPromptor`` +
``OpenAIGenerator`` when an LLM is configured, else ``ExtractiveGenerator`` → the stored row
(answer, top documents, latency, tokens) → ``TableSink`` replacing ``rag_answers`` in one transaction.

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
from sage_platform.dataflow.library._platform import record_hit
from sage_platform.dataflow.pipeline import DataStream
from sage_platform.platform import Platform
from sage_platform.retrieval.types import ranked_doc_ids
from sage_platform.tokenization import TokenCounter

RETRIEVERS = {"dense": DenseRetriever, "sparse": SparseRetriever, "hybrid": HybridRetriever,
              "elasticsearch": ElasticsearchRetriever}  # fmt: skip
CHUNKS_PER_DOC_RANK = 3  # fetch this many chunks per wanted document rank, so the doc ranking fills
RANKING_DEPTH = 10
COLUMNS = ["question_id", "answer", "answerer", "retrieved_chunk_ids", "retrieved_doc_ids", "latency_ms",
           "prompt_tokens", "completion_tokens", "context_tokens", "retrieved_tokens"]  # fmt: skip


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
        }  # fmt: skip


def build_rag_answers(env: BaseEnvironment, settings: Settings, *, platform: Platform | None = None) -> DataStream:
    """The pipeline on ``env``; ``platform`` (in process only) lets the steps share the caller's parts."""
    shared: dict[str, Any] = {"platform": platform} if platform is not None else {}
    answer_k = settings.retrieval_k
    depth = max(answer_k, RANKING_DEPTH * CHUNKS_PER_DOC_RANK)
    query = "SELECT question_id, question AS query FROM eval_questions ORDER BY position"
    stream = env.from_source(TableSource, {**shared, "query": query})
    stream = stream.map(RETRIEVERS[settings.retriever], {**shared, "top_k": depth}, batch_size=64)
    if settings.llm_configured:
        stream = stream.map(QAPromptor, {"context_k": answer_k}).map(OpenAIGenerator, shared, parallelism=4)
    else:
        stream = stream.map(ExtractiveGenerator, {**shared, "context_k": answer_k}, batch_size=64)
    return stream.map(AnswerRow, {"answer_k": answer_k}).sink(
        TableSink, {**shared, "table": "rag_answers", "columns": COLUMNS, "replace": True}
    )
