"""Evaluators: each adds per-record scores under ``scores`` and reports the run's figures when the run
ends (``result.summary["BLEU"]["bleu"]``), computed by the platform's own metrics (``evaluation.compute``)
over every record, also when several workers or partitions each saw a part.

Answer metrics need ``answer`` and ``references`` (acceptable answers, or one string). Ranking metrics
need ``relevant_doc_ids`` and ``retrieved_doc_ids`` (ranked), or ``retrieved`` hits to rank.
``Accuracy`` needs ``label`` (records without one are not counted); ``Latency``, ``TokenCount`` and
``ContextCompression`` read what generators and promptors record, and skip records without it.

Usage::

    .map(OpenAIGenerator).map(F1).map(BLEU).map(Recall, {"k": 5}).sink(FileSink, {"file_path": "scored.jsonl"})
"""

from __future__ import annotations

from typing import Any, ClassVar

from sage_platform.dataflow.functions import MapFunction
from sage_platform.dataflow.library._platform import record_hit
from sage_platform.evaluation import text_metrics as tm
from sage_platform.evaluation.labels import accuracy, label_from_answer
from sage_platform.evaluation.registry import compute
from sage_platform.retrieval.types import ranked_doc_ids
from sage_platform.tokenization import TokenCounter

SKIP = None  # what pair() returns for a record the metric does not apply to


def references_of(record: dict[str, Any]) -> list[str]:
    refs = record["references"]
    return [refs] if isinstance(refs, str) else [str(r) for r in refs]


class _Evaluator(MapFunction):
    """Collects what its metric needs per record; ``combine`` joins every worker's values, then computes."""

    metric: ClassVar[str]
    provides = frozenset({"scores"})

    def open(self) -> None:
        self._values: list[list[Any]] = []
        self.metric_name = self.metric

    def execute(self, data: Any) -> Any:
        pair = self.pair(data)
        if pair is SKIP:
            return data
        self._values.append(list(pair))
        return {**data, "scores": {**(data.get("scores") or {}), **self.per_record(*pair)}}

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any] | None:
        return str(data.get("answer") or ""), references_of(data)

    def per_record(self, prediction: Any, reference: Any) -> dict[str, float]:
        return {self.metric_name: compute(self.metric_name, [prediction], [reference])}

    def close(self) -> dict[str, Any]:
        return {"metric": self.metric_name, "values": self._values} if self._values else {}

    @classmethod
    def combine(cls, summaries: list[dict[str, Any]]) -> dict[str, Any]:
        values = [pair for summary in summaries for pair in summary.get("values", [])]
        if not values:
            return {}
        return cls.figures(summaries[0]["metric"], [p for p, _ in values], [r for _, r in values])

    @classmethod
    def figures(cls, metric: str, predictions: list[Any], references: list[Any]) -> dict[str, Any]:
        return {metric: compute(metric, predictions, references)}


class _AnswerEvaluator(_Evaluator):
    requires = frozenset({"answer", "references"})


class BLEU(_AnswerEvaluator):
    """Corpus BLEU (sacrebleu-compatible) for the run; sentence BLEU per record."""

    metric = "bleu"


class ROUGE(_AnswerEvaluator):
    """ROUGE-1/2/L F-measure, best reference per record, mean over the run."""

    metric = "rougeL"

    def per_record(self, prediction: Any, reference: Any) -> dict[str, float]:
        return tm.rouge_per_sample([prediction], [reference])[0]

    @classmethod
    def figures(cls, metric: str, predictions: list[Any], references: list[Any]) -> dict[str, Any]:
        return tm.rouge(predictions, references)


class F1(_AnswerEvaluator):
    """SQuAD token F1, best reference per record."""

    metric = "f1"


class ExactMatch(_AnswerEvaluator):
    """SQuAD-normalised exact match."""

    metric = "exact_match"


class Accuracy(_Evaluator):
    """The label read from the answer (yes/no/maybe by default, ``labels`` to change) against ``label``;
    also ``label_coverage``, the share of answers a label could be read from."""

    metric = "accuracy"
    requires = frozenset({"answer", "label"})

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any] | None:
        if not data.get("label"):
            return SKIP
        labels = self.config.get("labels")
        answer = str(data.get("answer") or "")
        return (label_from_answer(answer, labels) if labels else label_from_answer(answer)), str(data["label"])

    def per_record(self, prediction: Any, reference: Any) -> dict[str, float]:
        return {"accuracy": accuracy([prediction], [reference])}

    @classmethod
    def figures(cls, metric: str, predictions: list[Any], references: list[Any]) -> dict[str, Any]:
        return {"accuracy": accuracy(predictions, references),
                "label_coverage": sum(1 for p in predictions if p) / len(predictions)}  # fmt: skip


class _RankingEvaluator(_Evaluator):
    """``base@k`` over distinct ranked documents (``k`` in the config) against ``relevant_doc_ids``."""

    requires = frozenset({"relevant_doc_ids"})
    default_k: ClassVar[int] = 10

    def open(self) -> None:
        super().open()
        self._k = int(self.config.get("k", self.default_k))
        self.metric_name = f"{self.metric}@{self._k}"

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any] | None:
        ranked = data.get("retrieved_doc_ids")
        if ranked is None:
            ranked = ranked_doc_ids([record_hit(h) for h in data["retrieved"]], self._k)
        return list(ranked), list(data["relevant_doc_ids"])


class Recall(_RankingEvaluator):
    """Recall@k (default 5): the share of relevant documents in the top k."""

    metric = "recall"
    default_k = 5


class MRR(_RankingEvaluator):
    """Mean reciprocal rank of the first relevant document within k (default 10)."""

    metric = "mrr"


class NDCG(_RankingEvaluator):
    """nDCG@k (default 10), binary relevance."""

    metric = "ndcg"


class HitRate(_RankingEvaluator):
    """Whether any relevant document is in the top k (default 5)."""

    metric = "hit_rate"
    default_k = 5


class Latency(_Evaluator):
    """The generator's ``latency_ms``: per record, and p50/p95/p99/mean for the run."""

    metric = "latency"
    requires = frozenset({"latency_ms"})

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any] | None:
        return SKIP if data.get("latency_ms") is None else (float(data["latency_ms"]), None)

    def per_record(self, prediction: Any, reference: Any) -> dict[str, float]:
        return {"latency_ms": prediction}

    @classmethod
    def figures(cls, metric: str, predictions: list[Any], references: list[Any]) -> dict[str, Any]:
        names = ("latency_p50", "latency_p95", "latency_p99", "latency_mean")
        return {name: compute(name, predictions) for name in names}


class TokenCount(_Evaluator):
    """Prompt and completion tokens from the generator's ``usage``: per record, mean and total for the run."""

    metric = "tokens"
    requires = frozenset({"usage"})

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any] | None:
        usage = data.get("usage")
        if not usage or usage.get("prompt_tokens") is None:
            return SKIP
        return int(usage["prompt_tokens"]), int(usage["completion_tokens"])

    def per_record(self, prediction: Any, reference: Any) -> dict[str, float]:
        return {"prompt_tokens": prediction, "completion_tokens": reference}

    @classmethod
    def figures(cls, metric: str, predictions: list[Any], references: list[Any]) -> dict[str, Any]:
        return {"prompt_tokens": compute("prompt_tokens", predictions),
                "completion_tokens": compute("completion_tokens", references),
                "prompt_tokens_total": sum(predictions), "completion_tokens_total": sum(references)}  # fmt: skip


class ContextCompression(_Evaluator):
    """Tokens of the retrieved passages (``retrieved_tokens``, or counted from ``retrieved``) over the
    tokens of context the generator was given (``context_tokens``): 1.0 when every passage went in,
    higher when the prompt kept fewer."""

    metric = "compression_ratio"
    requires = frozenset({"context_tokens"})

    def open(self) -> None:
        super().open()
        self._counter = TokenCounter.local()

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any] | None:
        if not data.get("context_tokens"):
            return SKIP
        retrieved = data.get("retrieved_tokens")
        if retrieved is None:
            retrieved = sum(self._counter.count(str(h["text"])) for h in data["retrieved"])
        return int(retrieved), int(data["context_tokens"])
