"""Evaluators: each adds per-record scores under ``scores`` and reports the run's figure when it closes
(``result.summary["BLEU"]["bleu"]``), computed by the platform's own metrics (``evaluation.compute``).

Answer metrics need ``answer`` and ``references`` (a list of acceptable answers, or one string);
``Recall`` needs ``retrieved`` and ``relevant_doc_ids``; ``Accuracy`` needs ``label``; ``Latency``,
``TokenCount`` and ``ContextCompression`` read what generators and promptors record.

Usage::

    .map(OpenAIGenerator).map(F1).map(BLEU).map(Recall, {"k": 5}).sink(FileSink, {"file_path": "scored.jsonl"})
"""

from __future__ import annotations

from typing import Any, ClassVar

from sage_platform.dataflow.functions import MapFunction
from sage_platform.dataflow.library._platform import record_hit
from sage_platform.evaluation import text_metrics as tm
from sage_platform.evaluation.labels import label_from_answer
from sage_platform.evaluation.registry import compute
from sage_platform.retrieval.types import ranked_doc_ids
from sage_platform.tokenization import TokenCounter


def references_of(record: dict[str, Any]) -> list[str]:
    refs = record["references"]
    return [refs] if isinstance(refs, str) else [str(r) for r in refs]


class _Evaluator(MapFunction):
    """Collects what its metric needs per record; the run's figure is computed over all of them, also
    when several workers or partitions each saw a part (``combine`` joins the values, then computes)."""

    metric: ClassVar[str]

    def open(self) -> None:
        self._predictions: list[Any] = []
        self._references: list[Any] = []
        self.metric_name = self.metric

    def execute(self, data: Any) -> Any:
        prediction, reference = self.pair(data)
        self._predictions.append(prediction)
        self._references.append(reference)
        scores = {**(data.get("scores") or {}), **self.per_record(prediction, reference)}
        return {**data, "scores": scores}

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any]:
        return str(data.get("answer") or ""), references_of(data)

    def per_record(self, prediction: Any, reference: Any) -> dict[str, float]:
        return {self.metric_name: compute(self.metric_name, [prediction], [reference])}

    def close(self) -> dict[str, Any]:
        if not self._predictions:
            return {}
        return {
            "metric": self.metric_name,
            "values": [list(pair) for pair in zip(self._predictions, self._references, strict=True)],
        }

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
    provides = frozenset({"scores"})


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
    """The label read from the answer (yes/no/maybe by default, ``labels`` to change) against ``label``."""

    metric = "accuracy"
    requires = frozenset({"answer", "label"})
    provides = frozenset({"scores"})

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any]:
        labels = self.config.get("labels")
        answer = str(data.get("answer") or "")
        return (label_from_answer(answer, labels) if labels else label_from_answer(answer)), str(data["label"])


class Recall(_Evaluator):
    """Recall@k over distinct retrieved documents (``k``, default 5) against ``relevant_doc_ids``."""

    requires = frozenset({"retrieved", "relevant_doc_ids"})
    provides = frozenset({"scores"})
    metric = "recall@k"

    def open(self) -> None:
        super().open()
        self.metric_name = f"recall@{int(self.config.get('k', 5))}"

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any]:
        k = int(self.config.get("k", 5))
        return ranked_doc_ids([record_hit(h) for h in data["retrieved"]], k), list(data["relevant_doc_ids"])


class Latency(_Evaluator):
    """The generator's ``latency_ms``: per record, and p50/p95/p99/mean for the run."""

    metric = "latency"

    requires = frozenset({"latency_ms"})
    provides = frozenset({"scores"})

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any]:
        return float(data["latency_ms"]), None

    def per_record(self, prediction: Any, reference: Any) -> dict[str, float]:
        return {"latency_ms": prediction}

    @classmethod
    def figures(cls, metric: str, predictions: list[Any], references: list[Any]) -> dict[str, Any]:
        return {
            name: compute(name, predictions) for name in ("latency_p50", "latency_p95", "latency_p99", "latency_mean")
        }


class TokenCount(_Evaluator):
    """Prompt and completion tokens from the generator's ``usage``: per record, mean and total for the run."""

    metric = "tokens"

    requires = frozenset({"usage"})
    provides = frozenset({"scores"})

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any]:
        return int(data["usage"]["prompt_tokens"]), int(data["usage"]["completion_tokens"])

    def per_record(self, prediction: Any, reference: Any) -> dict[str, float]:
        return {"prompt_tokens": prediction, "completion_tokens": reference}

    @classmethod
    def figures(cls, metric: str, predictions: list[Any], references: list[Any]) -> dict[str, Any]:
        return {"prompt_tokens": compute("prompt_tokens", predictions),
                "completion_tokens": compute("completion_tokens", references),
                "prompt_tokens_total": sum(predictions), "completion_tokens_total": sum(references)}  # fmt: skip


class ContextCompression(_Evaluator):
    """Tokens of all retrieved passages over the tokens of context the generator was given
    (``context_tokens``): 1.0 when every passage went in, higher when the prompt kept fewer."""

    metric = "compression_ratio"
    requires = frozenset({"retrieved", "context_tokens"})
    provides = frozenset({"scores"})

    def open(self) -> None:
        super().open()
        self._counter = TokenCounter.local()

    def pair(self, data: dict[str, Any]) -> tuple[Any, Any]:
        return sum(self._counter.count(str(h["text"])) for h in data["retrieved"]), int(data["context_tokens"])
