"""The evaluation chart: per-question score distributions and the headline metrics, as a PNG.

Drawing takes most of a second, so the chart is drawn again only when what it plots changed (a digest
beside it says what the file shows): a re-run whose answers were all kept does not pay for it.

Usage::

    path = write_chart(report, Path(".sage/reports"))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sage_platform.hashing import json_hash

if TYPE_CHECKING:
    from sage_platform.evaluation.report import EvaluationReport


CHART_NAME = "score_distribution.png"


def write_chart(report: EvaluationReport, reports_dir: Path) -> Path:
    """Draw the chart into ``reports_dir`` unless the one there already shows these scores."""
    from sage_platform.evaluation.gate import points
    from sage_platform.evaluation.report import HEADLINE_METRICS

    f1 = [float(item["f1"]) for item in report.items]
    rouge = [100 * float(item["rougeL"]) for item in report.items]
    headline = {name: float(points(name, report.scores[name])) for name in HEADLINE_METRICS}
    path = reports_dir / CHART_NAME
    digest_path = path.with_name(CHART_NAME + ".digest")
    digest = json_hash([f1, rouge, headline])
    if path.is_file() and digest_path.is_file() and digest_path.read_text() == digest:
        return path
    reports_dir.mkdir(parents=True, exist_ok=True)
    digest_path.unlink(missing_ok=True)  # the file is being replaced: the digest says so only once it is
    drafted = path.with_name(f".{CHART_NAME}.{os.getpid()}")
    _draw(f1, rouge, headline, drafted)
    drafted.replace(path)
    digest_path.write_text(digest)
    return path


def _draw(f1: list[float], rouge: list[float], headline: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display here, and none needed
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    bins = [i * 10 for i in range(11)]
    left.hist([f1, rouge], bins=bins, label=["token F1", "ROUGE-L F × 100"], color=["#4878d0", "#ee854a"])
    left.set(title=f"Per-question scores ({len(f1)} questions)", xlabel="score", ylabel="questions")
    left.legend()
    right.barh(list(headline), list(headline.values()), color="#6acc64")
    right.set(title="Headline metrics (points, 0–100)", xlim=(0, 100))
    right.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
