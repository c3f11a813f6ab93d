"""Evaluation assets: the golden set, RAG answers to it, and the scored report."""

import base64
import time

from dagster import AssetExecutionContext, AutomationCondition, MaterializeResult, MetadataValue, asset

from sage_platform.assets._metadata import stored_table, table
from sage_platform.assets.indexing import pgvector_index
from sage_platform.dataflow import LocalEnvironment
from sage_platform.dataflow.dagster_env import operators_table
from sage_platform.dataflow.evaluation_report import evaluate
from sage_platform.dataflow.rag_answers import build_rag_answers
from sage_platform.evaluation import (
    HEADLINE_METRICS,
    load_golden_set,
    store_golden_set,
)
from sage_platform.evaluation.chart import write_chart
from sage_platform.resources import SageResource


@asset(group_name="rag", kinds={"postgres"})
def eval_questions(context: AssetExecutionContext, sage: SageResource) -> MaterializeResult[None]:
    """The golden set from SAGE_EVAL_SET (JSONL). A bad line fails this asset with its line number."""
    platform = sage.platform
    questions = load_golden_set(platform.settings.eval_set)
    store_golden_set(platform.db, questions)
    with platform.db.connect() as conn:
        standard = stored_table(conn, "eval_questions", rows=len(questions))
    return MaterializeResult(
        metadata={
            **standard,
            "eval_set": MetadataValue.path(str(platform.settings.eval_set)),
            "with_relevant_ids": sum(1 for q in questions if q.relevant_doc_ids),
            "preview": table(
                [("id", "string"), ("question", "string"), ("relevant", "string")],
                [(q.id, q.question, ", ".join(q.relevant_doc_ids)) for q in questions[:10]],
            ),
        }
    )


# Answers and the evaluation follow a changed index on their own (after an inbox run, a rebuild):
# declarative automation reads better here than a schedule guessing when the index is done.
@asset(
    group_name="rag",
    kinds={"openai", "postgres"},
    deps=[pgvector_index, eval_questions],
    pool="llm",
    automation_condition=AutomationCondition.eager(),
)
def rag_answers(context: AssetExecutionContext, sage: SageResource) -> MaterializeResult[None]:
    """The rag_answers dataflow (``sage pipeline run rag_answers``): top chunks per golden question from
    the configured retriever, an answer from the LLM or the extractive generator, stored with its costs.
    Questions whose answerer and retrieved context did not change keep their answer."""
    platform = sage.platform
    began = time.perf_counter()
    env = LocalEnvironment("rag_answers")
    build_rag_answers(env, platform.settings, platform=platform)
    result = env.submit()
    answered = result["TableSink"].records_out
    with platform.db.connect() as conn:
        standard = stored_table(conn, "rag_answers", rows=answered)
        preview = conn.execute(
            """SELECT q.question, a.answer, a.retrieved_doc_ids, a.answerer FROM rag_answers a
               JOIN eval_questions q USING (question_id) ORDER BY q.position LIMIT 10"""
        ).fetchall()
        reused = conn.execute("SELECT count(*) FROM rag_answers WHERE reused").fetchone()
    kept = int(reused[0]) if reused else 0
    answerer = preview[0][3] if preview else "none"
    context.log.info(f"answered {answered - kept} questions with {answerer}; kept {kept} whose context did not change")
    return MaterializeResult(
        metadata={
            **standard,
            "answerer": answerer,
            "answered": answered - kept,
            "answers_reused": kept,
            "retriever": platform.settings.retriever,
            "k": platform.settings.retrieval_k,
            "duration_s": round(time.perf_counter() - began, 3),
            "dataflow": operators_table(result.operators),
            "preview": table(
                [("question", "string"), ("answer", "string"), ("top_documents", "string")],
                [(q, a, ", ".join(d[:3])) for q, a, d, _ in preview],
            ),
        }
    )


@asset(group_name="rag", kinds={"python"}, deps=[rag_answers], automation_condition=AutomationCondition.eager())
def evaluation_report(context: AssetExecutionContext, sage: SageResource) -> MaterializeResult[None]:
    """The evaluation dataflow over the stored answers: BLEU, ROUGE, EM/F1, retrieval recall/MRR/nDCG,
    label accuracy, latency, tokens and context compression, plotted across materializations."""
    platform = sage.platform
    settings = platform.settings
    report = evaluate(
        platform,
        reports_dir=settings.reports_dir,
        settings={
            "retriever": platform.retriever.name,
            "retrieval_k": settings.retrieval_k,
            "embedding_model": platform.embedder.model_name,
            "chunker": platform.splitter.fingerprint,
            "corpus_dir": str(settings.corpus_dir),
            "eval_set": str(settings.eval_set),
            "dagster_run_id": context.run.run_id,
        },
    )
    summary = table([("metric", "string"), ("score", "float")],
                    [(name, round(float(report.scores[name]), 4)) for name in HEADLINE_METRICS])  # fmt: skip
    worst = table(
        [("question", "string"), ("gold", "string"), ("prediction", "string"), ("retrieved", "string"), ("f1", "float")],
        [(w["question"], w["gold"], w["prediction"], ", ".join(w["retrieved_doc_ids"][:3]), round(w["f1"], 1))
         for w in report.worst(10)],
        width=60,
    )  # fmt: skip
    chart = write_chart(report, settings.reports_dir)
    image = base64.b64encode(chart.read_bytes()).decode("ascii")
    return MaterializeResult(
        metadata={
            **{name: MetadataValue.float(float(value)) for name, value in report.scores.items()},
            "chart_path": MetadataValue.path(str(chart)),
            "chart": MetadataValue.md(f"![score distribution](data:image/png;base64,{image})"),
            "answerer": report.answerer,
            "questions": len(report.items),
            "report_path": MetadataValue.path(str(report.path)),
            "summary": summary,
            "worst_questions": worst,
        }
    )
