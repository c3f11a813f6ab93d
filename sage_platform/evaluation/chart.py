"""The evaluation chart: per-question score distributions and the headline metrics, as a PNG.

Usage::

    path = write_chart(report, Path(".sage/reports"))
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sage_platform.evaluation.report import EvaluationReport


def write_chart(report: EvaluationReport, reports_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display here, and none needed
    import matplotlib.pyplot as plt

    from sage_platform.evaluation.gate import points
    from sage_platform.evaluation.report import HEADLINE_METRICS

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    bins = [i * 10 for i in range(11)]
    left.hist(
        [[item["f1"] for item in report.items], [100 * item["rougeL"] for item in report.items]],
        bins=bins,
        label=["token F1", "ROUGE-L F × 100"],
        color=["#4878d0", "#ee854a"],
    )
    left.set(title=f"Per-question scores ({len(report.items)} questions)", xlabel="score", ylabel="questions")
    left.legend()
    names = list(HEADLINE_METRICS)
    right.barh(names, [points(n, report.scores[n]) for n in names], color="#6acc64")
    right.set(title="Headline metrics (points, 0–100)", xlim=(0, 100))
    right.invert_yaxis()
    figure.tight_layout()
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / "score_distribution.png"
    figure.savefig(path)
    plt.close(figure)
    return path
