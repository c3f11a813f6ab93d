"""What ``submit()`` returns: per-operator counters, the records that reached the end, and skips.

Usage::

    result = env.submit()
    result["QAPromptor"].records_out, result["OpenAIGenerator"].p99_ms
    print(result.table())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sage_platform.dataflow.functions import BaseFunction
from sage_platform.dataflow.pipeline import Stage
from sage_platform.dataflow.runner import OperatorStats, SkippedRecord


@dataclass
class PipelineResult:
    pipeline: str
    environment: str
    operators: list[OperatorStats]
    outputs: list[Any] = field(default_factory=list)  # records leaving the last step when it is not a sink
    skipped: list[SkippedRecord] = field(default_factory=list)
    duration_s: float = 0.0
    stopped: bool = False  # True when stopped by stop() or Ctrl-C rather than by the sources running out

    def __getitem__(self, operator: str) -> OperatorStats:
        for stats in self.operators:
            if stats.name == operator:
                return stats
        raise KeyError(f"no operator {operator!r}; the pipeline has {', '.join(s.name for s in self.operators)}")

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        """Figures the operators reported when they closed (evaluators' scores), by operator."""
        return {s.name: s.summary for s in self.operators if s.summary}

    def table(self) -> str:
        rows = [s.as_row() for s in self.operators]
        columns = ["operator", "kind", "parallelism", "in", "out", "errors", "skipped", "retries", "p50_ms", "p99_ms"]
        cells = [[("" if row[c] is None else str(row[c])) for c in columns] for row in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
        head = f"{self.pipeline} on {self.environment}: {self.duration_s:.2f} s" + (
            " (stopped)" if self.stopped else ""
        )
        return "\n".join([head, *lines])


def merged(stages: Sequence[Stage], parts: list[OperatorStats]) -> list[OperatorStats]:
    """One ``OperatorStats`` per step, in pipeline order, from the counters of all its workers (or
    partitions); their summaries combined by the step's function."""
    total = {s.name: OperatorStats(s.name, s.kind, s.parallelism) for s in stages}
    summaries: dict[str, list[dict[str, Any]]] = {s.name: [] for s in stages}
    for part in parts:
        total[part.name].merge(part)
        if part.summary:
            summaries[part.name].append(part.summary)
    for stage in stages:
        if summaries[stage.name]:
            combine = stage.function.combine if stage.function else BaseFunction.combine
            total[stage.name].summary = combine(summaries[stage.name])
    return list(total.values())
