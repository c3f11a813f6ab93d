"""The evaluation chart is drawn again only when what it plots changed."""

from __future__ import annotations

from pathlib import Path

from sage_platform.evaluation.chart import write_chart
from sage_platform.evaluation.report import HEADLINE_METRICS, EvaluationReport


def _report(tmp_path: Path, f1s: list[float]) -> EvaluationReport:
    items = [{"f1": f1, "rougeL": f1 / 100, "recall@10": 1.0} for f1 in f1s]
    scores = dict.fromkeys(HEADLINE_METRICS, 0.5)
    return EvaluationReport("r1", scores, items, tmp_path / "report.json", "extractive")


def _drawn(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_the_same_scores_keep_the_chart_and_other_scores_redraw_it(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    chart = write_chart(_report(tmp_path, [10.0, 55.0, 90.0]), reports)
    assert chart == reports / "score_distribution.png" and chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = _drawn(chart), chart.read_bytes()

    assert write_chart(_report(tmp_path, [10.0, 55.0, 90.0]), reports) == chart
    assert (_drawn(chart), chart.read_bytes()) == first  # not drawn again

    write_chart(_report(tmp_path, [10.0, 55.0, 20.0]), reports)
    assert chart.read_bytes() != first[1]  # one answer's score moved a bar
    assert sorted(p.name for p in reports.iterdir()) == ["score_distribution.png", "score_distribution.png.digest"]


def test_a_chart_without_its_digest_is_drawn_again(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    chart = write_chart(_report(tmp_path, [30.0, 60.0]), reports)
    chart.write_bytes(b"not a chart")
    (reports / "score_distribution.png.digest").unlink()
    write_chart(_report(tmp_path, [30.0, 60.0]), reports)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
