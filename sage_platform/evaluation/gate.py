"""The regression gate: compare an evaluation with the previous one, metric by metric.

Every headline metric is compared in points on a 0–100 scale (metrics reported on 0–1 are
multiplied by 100), so one margin (default 2 points) means the same for BLEU and for recall.

Usage::

    gate = compare_scores(previous, current, margin=2.0)
    gate.passed, gate.rows   # (metric, previous, new, change in points)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sage_platform.evaluation.report import HEADLINE_METRICS

HUNDRED_POINT_METRICS = {"bleu", "exact_match", "f1"}  # already on 0–100; the rest are fractions


def points(metric: str, value: float) -> float:
    return value if metric in HUNDRED_POINT_METRICS else 100.0 * value


@dataclass
class GateResult:
    rows: list[tuple[str, float | None, float | None, float | None]] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)
    margin: float = 2.0

    @property
    def passed(self) -> bool:
        return not self.regressions

    @property
    def summary(self) -> str:
        if self.passed:
            return f"no headline metric dropped by more than {self.margin} points"
        return f"dropped by more than {self.margin} points: " + ", ".join(self.regressions)


def compare_scores(previous: dict[str, float], current: dict[str, float], *, margin: float = 2.0) -> GateResult:
    result = GateResult(margin=margin)
    for metric in HEADLINE_METRICS + tuple(m for m in ("accuracy",) if m in current or m in previous):
        old, new = previous.get(metric), current.get(metric)
        delta = None if old is None or new is None else points(metric, new) - points(metric, old)
        result.rows.append((metric, old, new, delta))
        if delta is not None and -delta > margin:
            result.regressions.append(metric)
    return result
