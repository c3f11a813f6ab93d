"""Asset checks in Dagster runs: blocking data-quality checks and the evaluation regression gate."""

import pytest
from dagster import DagsterInstance

from sage_platform.config import Settings
from sage_platform.db import Database
from tests.conftest import write_pubmedqa
from tests.graph import run_graph


def _checks(result) -> dict[str, tuple[bool, str]]:  # type: ignore[no-untyped-def]
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data  # an AssetCheckEvaluation
            out[evaluation.check_name] = (evaluation.passed, evaluation.severity.value)
    return out


def _materialized(result) -> set[str]:  # type: ignore[no-untyped-def]
    return {e.materialization.asset_key.path[0] for e in result.get_asset_materialization_events()}


def test_checks_pass_then_a_bad_document_blocks_everything_downstream(settings: Settings, db: Database) -> None:
    write_pubmedqa(settings.corpus_dir, settings.eval_set, 12)
    instance = DagsterInstance.ephemeral()
    first = run_graph(instance)
    assert first.success
    assert _checks(first) == {
        "raw_documents_quality": (True, "ERROR"),
        "document_chunks_quality": (True, "ERROR"),
        "chunk_embeddings_quality": (True, "ERROR"),
        "pgvector_index_quality": (True, "ERROR"),
        "evaluation_regression": (True, "ERROR"),
    }
    with db.connect() as conn:  # damage that the next incremental run does not repair on its own
        conn.execute("UPDATE documents SET text = '' WHERE doc_id = (SELECT min(doc_id) FROM documents)")
    second = run_graph(instance, raise_on_error=False)
    assert not second.success
    assert _checks(second)["raw_documents_quality"] == (False, "ERROR")
    assert _materialized(second) == {"raw_documents", "eval_questions"}  # nothing downstream of the bad data


def test_a_wrong_dimension_vector_stops_the_run_before_indexing(settings: Settings, db: Database) -> None:
    write_pubmedqa(settings.corpus_dir, settings.eval_set, 8)
    instance = DagsterInstance.ephemeral()
    assert run_graph(instance).success
    with db.connect() as conn:
        conn.execute(
            "UPDATE embeddings SET embedding = '[1,0,0]', dim = 3 WHERE text_hash = (SELECT min(text_hash) FROM chunks)"
        )
    result = run_graph(instance, raise_on_error=False)
    assert _checks(result)["chunk_embeddings_quality"] == (False, "ERROR")
    assert "pgvector_index" not in _materialized(result)


def _check_metadata(result, check: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    for event in result.all_events:
        evaluation = event.event_specific_data
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and evaluation.check_name == check:
            return {key: value.value for key, value in evaluation.metadata.items()}
    raise KeyError(check)


def test_a_run_validates_what_it_wrote_and_a_check_run_alone_the_whole_table(settings: Settings, db: Database) -> None:
    from dagster import AssetSelection, materialize

    from sage_platform.assets import rag_assets, rag_resources
    from sage_platform.assets.checks import quality_checks, raw_documents_quality
    from sage_platform.quality.suites import CHANGED_ROWS

    pmids = write_pubmedqa(settings.corpus_dir, settings.eval_set, 8, as_files=True)
    instance = DagsterInstance.ephemeral()
    first = run_graph(instance)
    assert _check_metadata(first, "raw_documents_quality") | {"failing_rows": None} == {
        "scope": "whole table", "rows": 8, "expectations": 4, "failed_expectations": 0, "failing_rows": None
    }  # fmt: skip
    edited = settings.corpus_dir / f"{pmids[0]}.txt"
    edited.write_text(edited.read_text() + "\n\nA sentence added to one page.")
    second = run_graph(instance)
    with db.connect() as conn:
        row = conn.execute("SELECT count(*) FROM chunks WHERE doc_id LIKE %s", (f"{pmids[0]}%",)).fetchone()
    assert row is not None and row[0] > 0
    scopes = {
        name: (meta["scope"], meta["rows"])
        for name in (
            "raw_documents_quality",
            "document_chunks_quality",
            "chunk_embeddings_quality",
            "pgvector_index_quality",
        )
        for meta in [_check_metadata(second, name)]
    }
    assert scopes["raw_documents_quality"] == (CHANGED_ROWS, 1)
    assert scopes["document_chunks_quality"][0] == CHANGED_ROWS and 0 < scopes["document_chunks_quality"][1] <= row[0]
    assert scopes["chunk_embeddings_quality"][0] == CHANGED_ROWS
    assert scopes["pgvector_index_quality"][0] == CHANGED_ROWS and 0 < scopes["pgvector_index_quality"][1] <= 2 * row[0]

    alone = materialize(
        [*rag_assets, *quality_checks],
        resources=rag_resources(),
        instance=instance,
        selection=AssetSelection.checks(raw_documents_quality),
    )
    assert not alone.get_asset_materialization_events()
    assert _check_metadata(alone, "raw_documents_quality")["scope"] == "whole table"
    assert _check_metadata(alone, "raw_documents_quality")["rows"] == 8


@pytest.mark.parametrize("severity", ["ERROR", "WARN"])
def test_the_regression_gate_fails_when_quality_drops(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch, severity: str
) -> None:
    monkeypatch.setenv("SAGE_EVAL_REGRESSION_SEVERITY", severity)
    write_pubmedqa(settings.corpus_dir, settings.eval_set, 12)
    instance = DagsterInstance.ephemeral()
    assert run_graph(instance).success
    # Drop half of the relevant documents: retrieval recall must fall far past 2 points.
    lines = (settings.corpus_dir / "pubmedqa.jsonl").read_text().splitlines()
    (settings.corpus_dir / "pubmedqa.jsonl").write_text("\n".join(lines[::2]) + "\n")
    result = run_graph(instance, raise_on_error=False)
    assert _checks(result)["evaluation_regression"] == (False, severity)
    evaluation = next(
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "evaluation_regression"  # type: ignore[union-attr]
    )
    table = evaluation.metadata["comparison"].value  # a Dagster table, one row per headline metric
    rows = {record.data["metric"]: record.data for record in table.records}
    assert [c.name for c in table.schema.columns] == ["metric", "previous", "new", "change_points", "regressed"]
    assert rows["recall@5"]["regressed"] and rows["recall@5"]["change_points"] < -2
    assert sum(row["regressed"] for row in rows.values()) == evaluation.metadata["regressions"].value
    assert "recall@5" in evaluation.description


def test_report_chart_and_summary(settings: Settings) -> None:
    from tests.graph import metadata

    write_pubmedqa(settings.corpus_dir, settings.eval_set, 10)
    result = run_graph()
    meta = metadata(result, "evaluation_report")
    chart = settings.reports_dir / "score_distribution.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and meta["chart_path"] == str(chart)
    assert meta["chart"].startswith("![score distribution](data:image/png;base64,")
    assert {r.data["metric"] for r in meta["summary"].records} >= {"recall@5", "bleu", "f1"}
    worst = meta["worst_questions"].records
    assert len(worst) == 10 and all(isinstance(r.data["f1"], float) for r in worst)
    # Accuracy and coverage recomputed from the stored answers and the golden labels.
    from sage_platform.db import Database
    from sage_platform.evaluation.labels import label_from_answer

    db = Database.from_settings(settings, migrate=False)
    try:
        with db.connect() as conn:
            rows = conn.execute(
                "SELECT a.answer, q.label FROM rag_answers a JOIN eval_questions q ON q.question_id = a.question_id"
            ).fetchall()
    finally:
        db.close()
    said = [(label_from_answer(answer), label) for answer, label in rows]
    assert len(said) == 10
    assert meta["accuracy"] == pytest.approx(sum(p == g for p, g in said) / len(said))
    assert meta["label_coverage"] == pytest.approx(sum(p is not None for p, _ in said) / len(said))
