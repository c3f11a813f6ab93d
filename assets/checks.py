"""Asset checks: Great Expectations suites that block bad data before it flows on, and the
evaluation regression gate."""

from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    asset_check,
)

from sage_platform.assets._metadata import table
from sage_platform.assets.embedding import chunk_embeddings
from sage_platform.assets.evaluation import evaluation_report
from sage_platform.assets.indexing import pgvector_index
from sage_platform.assets.ingestion import document_chunks, raw_documents
from sage_platform.evaluation.gate import compare_scores
from sage_platform.quality import QualityResult, chunks_quality, documents_quality, embeddings_quality, index_quality
from sage_platform.resources import SageResource


def _result(quality: QualityResult) -> AssetCheckResult:
    failing: list[tuple[Any, ...]] = []
    for failure in quality.failures:
        for row in failure.rows:
            failing.append((failure.expectation, failure.column or "", ", ".join(f"{k}={v}" for k, v in row.items())))
    return AssetCheckResult(
        passed=quality.success,
        severity=AssetCheckSeverity.ERROR,
        description=(
            "all expectations met"
            if quality.success
            else "; ".join(
                f"{f.expectation}({f.column or 'table'}): {f.unexpected_count} rows" for f in quality.failures
            )
        ),
        metadata={
            "scope": quality.scope,
            "rows": quality.rows,
            "expectations": quality.evaluated,
            "failed_expectations": len(quality.failures),
            "failing_rows": table(
                [("expectation", "string"), ("column", "string"), ("row", "string")], failing[:20], width=100
            ),  # fmt: skip
        },
    )


def _whole_table(context: AssetCheckExecutionContext, asset: AssetKey) -> bool:
    """After its asset in the same run, a suite validates what was written since its last pass; run on
    its own (the check's "Execute" in the UI, a run selecting the check alone), the whole table. (The
    run's asset selection cannot tell them apart: a whole job's run selects no assets by name.)"""
    latest = context.instance.get_latest_materialization_event(asset)
    return latest is None or latest.run_id != context.run.run_id


@asset_check(asset=raw_documents, blocking=True, description="GX: non-empty text, unique ids, size bounds, file types")
def raw_documents_quality(context: AssetCheckExecutionContext, sage: SageResource) -> AssetCheckResult:
    whole_table = _whole_table(context, raw_documents.key)
    return _result(documents_quality(sage.platform.db, sage.platform.settings, whole_table=whole_table))


@asset_check(asset=document_chunks, blocking=True, description="GX: token bounds, no empty chunk, documents exist")
def document_chunks_quality(context: AssetCheckExecutionContext, sage: SageResource) -> AssetCheckResult:
    whole_table = _whole_table(context, document_chunks.key)
    return _result(chunks_quality(sage.platform.db, sage.platform.settings, whole_table=whole_table))


@asset_check(
    asset=chunk_embeddings, blocking=True, description="GX: one vector per chunk, dimension, finite, unit norm"
)
def chunk_embeddings_quality(context: AssetCheckExecutionContext, sage: SageResource) -> AssetCheckResult:
    embedder = sage.platform.embedder
    whole_table = _whole_table(context, chunk_embeddings.key)
    return _result(
        embeddings_quality(sage.platform.db, model=embedder.model_name, dim=embedder.dimension, whole_table=whole_table)
    )


@asset_check(
    asset=pgvector_index, blocking=True, description="GX: the live index holds every chunk, current, and nothing else"
)
def pgvector_index_quality(context: AssetCheckExecutionContext, sage: SageResource) -> AssetCheckResult:
    return _result(index_quality(sage.platform.db, whole_table=_whole_table(context, pgvector_index.key)))


@asset_check(asset=evaluation_report, description="Regression gate: no headline metric drops past the margin")
def evaluation_regression(context: AssetCheckExecutionContext, sage: SageResource) -> AssetCheckResult:
    settings = sage.platform.settings
    records = context.instance.fetch_materializations(AssetKey("evaluation_report"), limit=2).records
    scores = [
        {k: v.value for k, v in r.asset_materialization.metadata.items() if isinstance(v.value, float)} for r in records
    ]
    if len(scores) < 2:
        return AssetCheckResult(passed=True, description="first evaluation: nothing to compare with yet")
    gate = compare_scores(scores[1], scores[0], margin=settings.eval_regression_margin)
    return AssetCheckResult(
        passed=gate.passed,
        severity=AssetCheckSeverity(settings.eval_regression_severity),
        description=gate.summary,
        metadata={
            "margin_points": settings.eval_regression_margin,
            "comparison": table(
                [
                    ("metric", "string"),
                    ("previous", "float"),
                    ("new", "float"),
                    ("change_points", "float"),
                    ("regressed", "bool"),
                ],
                [
                    (metric, old, new, None if delta is None else round(delta, 2), metric in gate.regressions)
                    for metric, old, new, delta in gate.rows
                ],  # fmt: skip
            ),
            "regressions": len(gate.regressions),
        },
    )


quality_checks = [
    raw_documents_quality,
    document_chunks_quality,
    chunk_embeddings_quality,
    pgvector_index_quality,
    evaluation_regression,
]
