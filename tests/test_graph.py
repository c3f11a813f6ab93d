"""The whole asset graph, materialized with Dagster's API on the real embedded PostgreSQL."""

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance

from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.evaluation import HEADLINE_METRICS
from tests.conftest import pubmedqa_items
from tests.graph import metadata, run_graph
from tests.openai_stub import DIMENSION, openai_stub


def _write_corpus(corpus: Path, golden: Path) -> dict[str, list[str]]:
    """Three Markdown documents built from real PubMedQA abstracts, one per topic block."""
    items = pubmedqa_items(24)
    docs: dict[str, list[str]] = {}
    for n, name in enumerate(["alpha.md", "beta.md", "gamma.md"]):
        block = items[n * 8 : (n + 1) * 8]
        paragraphs = [p for _, item in block for p in item["CONTEXTS"]]
        docs[name] = paragraphs
        (corpus / name).write_text("\n\n".join(paragraphs))
    with golden.open("w") as out:
        for i, (pmid, item) in enumerate(items):
            out.write(json.dumps({"id": pmid, "question": item["QUESTION"], "golden_answers": [item["LONG_ANSWER"]],
                                  "relevant_doc_ids": [["alpha.md", "beta.md", "gamma.md"][i // 8]]}) + "\n")  # fmt: skip
    return docs


def _rows(db: Database, query: str, *params: object) -> list[tuple]:
    with db.connect() as conn:
        return conn.execute(query, params).fetchall()


def test_graph_materializes_and_reruns_incrementally(settings: Settings, db: Database) -> None:
    docs = _write_corpus(settings.corpus_dir, settings.eval_set)
    instance = DagsterInstance.ephemeral()
    first = run_graph(instance)
    assert first.success
    chunks = metadata(first, "document_chunks")["dagster/row_count"]
    assert chunks > 10 and chunks == len(_rows(db, "SELECT 1 FROM chunks"))
    documents = metadata(first, "raw_documents")
    assert documents["dagster/table_name"] == "documents" and documents["dagster/row_count"] == len(docs)
    columns = {column.name: column.type for column in documents["dagster/column_schema"].columns}
    assert columns["doc_id"] == "string" and columns["size_bytes"] == "int"  # read from the database itself
    preview = documents["preview"]  # a Dagster table with a schema, not Markdown
    assert [column.name for column in preview.schema.columns] == ["doc_id", "title", "bytes"]
    assert len(preview.records) == min(10, len(docs)) and isinstance(preview.records[0].data["bytes"], int)
    embedded = metadata(first, "chunk_embeddings")
    assert (
        embedded["embedded"] == len(_rows(db, "SELECT DISTINCT text_hash FROM chunks")) and embedded["dimension"] == 384
    )
    index = metadata(first, "pgvector_index")
    assert (index["mode"], index["dagster/row_count"], index["version"]) == ("rebuild", chunks, 1)
    assert (
        "USING hnsw (embedding vector_cosine_ops)"
        in _rows(db, "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunk_index_v1_hnsw'")[0][0]
    )

    report = json.loads((settings.reports_dir / "evaluation.json").read_text())
    assert set(HEADLINE_METRICS) <= set(report) and report["settings"]["questions"] == 24
    # The report's retrieval figures are what the configured retriever gives, recomputed here question by
    # question; and it finds the right one of three documents first far more often than chance (1/3).
    from sage_platform.evaluation import retrieval_metrics as rm
    from sage_platform.platform import Platform
    from sage_platform.retrieval.types import ranked_doc_ids

    golden = [json.loads(line) for line in settings.eval_set.read_text().splitlines()]
    platform = Platform(settings)
    try:
        retriever = platform.retriever_named(settings.retriever)
        hits = retriever.search_many([q["question"] for q in golden], k=30)  # as rag_answers asks
        ranked = [ranked_doc_ids(question_hits, 10) for question_hits in hits]
    finally:
        platform.db.close()
    relevant = [q["relevant_doc_ids"] for q in golden]
    assert report["recall@1"] == pytest.approx(rm.recall_at_k(ranked, relevant, 1))
    assert report["mrr@10"] == pytest.approx(rm.mrr_at_k(ranked, relevant, 10))
    assert report["ndcg@10"] == pytest.approx(rm.ndcg_at_k(ranked, relevant, 10))
    assert report["hit_rate@5"] == pytest.approx(rm.hit_rate_at_k(ranked, relevant, 5))
    assert report["recall@1"] >= 0.75, report["recall@1"]
    plotted = metadata(first, "evaluation_report")
    assert plotted["recall@5"] == pytest.approx(report["recall@5"])
    assert "extractive" in plotted["answerer"]
    # The answers' costs, measured by the rag_answers dataflow and stored with each answer.
    costs = _rows(
        db, "SELECT latency_ms, prompt_tokens, completion_tokens, retrieved_tokens, context_tokens FROM rag_answers"
    )
    assert len(costs) == 24 and all(latency > 0 and prompt > 0 and used > 0 for latency, prompt, _, _, used in costs)
    assert report["prompt_tokens"] == pytest.approx(sum(c[1] for c in costs) / 24)
    assert report["compression_ratio"] == pytest.approx(sum(c[3] for c in costs) / sum(c[4] for c in costs))
    assert report["compression_ratio"] >= 1.0  # the extractive answerer reads the top 3 of the top k chunks
    assert report["latency_p50"] <= report["latency_p99"]
    assert plotted["prompt_tokens"] == pytest.approx(report["prompt_tokens"])

    # Nothing changed: nothing is embedded again, and the index sync is empty.
    second = run_graph(instance)
    assert metadata(second, "chunk_embeddings")["embedded"] == 0
    assert metadata(second, "raw_documents")["files_unchanged"] == 3
    sync = metadata(second, "pgvector_index")
    assert (sync["mode"], sync["inserted"], sync["deleted"]) == ("incremental", 0, 0)

    # Edit one paragraph of alpha.md, delete gamma.md.
    before = {h for (h,) in _rows(db, "SELECT text_hash FROM chunks")}
    alpha_before = len(_rows(db, "SELECT 1 FROM chunks WHERE doc_id = 'alpha.md'"))
    gamma_hashes = {h for (h,) in _rows(db, "SELECT text_hash FROM chunks WHERE doc_id = 'gamma.md'")}
    edited = list(docs["alpha.md"])
    edited[len(edited) // 2] += " This sentence was added by the test to change one paragraph."
    (settings.corpus_dir / "alpha.md").write_text("\n\n".join(edited))
    (settings.corpus_dir / "gamma.md").unlink()

    third = run_graph(instance)
    after = {h for (h,) in _rows(db, "SELECT text_hash FROM chunks")}
    changed = after - before
    assert 1 <= len(changed) < alpha_before  # not every chunk of the edited document
    assert metadata(third, "chunk_embeddings")["embedded"] == len(changed)
    assert metadata(third, "raw_documents")["deleted"] == 1
    for table in ("documents", "chunks", "chunk_index"):
        assert _rows(db, f"SELECT count(*) FROM {table} WHERE doc_id = 'gamma.md'")[0][0] == 0  # noqa: S608
    only_gamma = gamma_hashes - after
    assert only_gamma and not _rows(db, "SELECT 1 FROM embeddings WHERE text_hash = ANY(%s)", list(only_gamma))
    # The index matches the chunks exactly, and the edited text is searchable.
    assert {c for (c,) in _rows(db, "SELECT chunk_id FROM chunk_index")} == {
        c for (c,) in _rows(db, "SELECT chunk_id FROM chunks")
    }
    assert _rows(db, "SELECT count(*) FROM chunk_index WHERE text LIKE %s", "%added by the test%")[0][0] >= 1


def test_changing_the_model_reembeds_everything_and_retires_old_vectors(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_corpus(settings.corpus_dir, settings.eval_set)
    assert run_graph().success
    with openai_stub() as stub:
        monkeypatch.setenv("SAGE_EMBEDDING_BASE_URL", stub.url)
        monkeypatch.setenv("SAGE_EMBEDDING_MODEL", "stub-embedding")
        monkeypatch.setenv("SAGE_CHUNK_SIZE", "1200")
        monkeypatch.setenv("SAGE_CHUNK_OVERLAP", "100")
        result = run_graph()
        assert any(path.endswith("/embeddings") for path, _ in stub.requests)
    assert result.success
    models = _rows(db, "SELECT model, dim, count(*) FROM embeddings GROUP BY 1, 2")
    distinct = _rows(db, "SELECT count(DISTINCT text_hash) FROM chunks")[0][0]
    assert models == [("stub-embedding", DIMENSION, distinct)]
    index = metadata(result, "pgvector_index")
    assert index["mode"] == "rebuild" and index["dagster/row_count"] == _rows(db, "SELECT count(*) FROM chunks")[0][0]
    assert metadata(result, "document_chunks")["chunker"] == "cdc1:chars:1200:100"


def test_a_configured_llm_answers_from_the_retrieved_context(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_corpus(settings.corpus_dir, settings.eval_set)
    with openai_stub() as stub:
        monkeypatch.setenv("SAGE_DEFAULT_LLM_API_BASE_URL", stub.url)
        monkeypatch.setenv("SAGE_DEFAULT_LLM_MODEL_NAME", "stub-model")
        monkeypatch.setenv("SAGE_DEFAULT_LLM_API_KEY", "sk-test-not-logged")
        result = run_graph()
        chats = [body for path, body in stub.requests if path.endswith("/chat/completions")]
    assert result.success and len(chats) == 24
    assert metadata(result, "rag_answers")["answerer"] == "llm (stub-model)"
    answers = _rows(db, "SELECT answer, retrieved_doc_ids FROM rag_answers")
    assert all(answer.startswith(f"stub answer from {docs[0]} to: ") for answer, docs in answers)
    assert chats[0]["model"] == "stub-model" and chats[0]["temperature"] == 0.0


def test_a_rerun_answers_again_only_the_questions_whose_context_or_answerer_changed(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _write_corpus(settings.corpus_dir, settings.eval_set)

    def chats_of(stub: object) -> list[dict]:
        found = [body for path, body in stub.requests if path.endswith("/chat/completions")]  # type: ignore[attr-defined]
        stub.requests.clear()  # type: ignore[attr-defined]
        return found

    with openai_stub() as stub:
        monkeypatch.setenv("SAGE_DEFAULT_LLM_API_BASE_URL", stub.url)
        monkeypatch.setenv("SAGE_DEFAULT_LLM_MODEL_NAME", "stub-model")
        instance = DagsterInstance.ephemeral()
        assert run_graph(instance).success and len(chats_of(stub)) == 24
        before = dict(_rows(db, "SELECT question_id, answer FROM rag_answers"))

        unchanged = run_graph(instance)  # nothing changed: no model call, every answer kept
        assert chats_of(stub) == [] and metadata(unchanged, "rag_answers")["answers_reused"] == 24
        assert dict(_rows(db, "SELECT question_id, answer FROM rag_answers")) == before

        # Every chunk of alpha.md changes: the questions that retrieved any of them are answered again.
        (settings.corpus_dir / "alpha.md").write_text("\n\n".join(p + " (revised)" for p in docs["alpha.md"]))
        edited = run_graph(instance)
        asked = {message["content"] for chat in chats_of(stub) for message in chat["messages"]}
        again = _rows(db, "SELECT a.question_id, a.retrieved_chunk_ids FROM rag_answers a WHERE NOT a.reused")
        assert 0 < len(again) < 24 and metadata(edited, "rag_answers")["answered"] == len(again)
        alpha = {cid for (cid,) in _rows(db, "SELECT chunk_id FROM chunks WHERE doc_id = 'alpha.md'")}
        assert all(alpha & set(chunks) for _, chunks in again)
        kept = _rows(db, "SELECT question_id, answer, retrieved_chunk_ids FROM rag_answers WHERE reused")
        assert all(before[qid] == answer for qid, answer, _ in kept)
        assert not any(alpha & set(chunks) for _, _, chunks in kept)
        assert len([m for m in asked if "(revised)" in m]) == len(again)

        monkeypatch.setenv("SAGE_DEFAULT_LLM_TEMPERATURE", "0.5")  # another answerer: every question again
        assert run_graph(instance).success and len(chats_of(stub)) == 24


def test_a_bad_golden_set_fails_eval_questions_with_the_line(settings: Settings) -> None:
    _write_corpus(settings.corpus_dir, settings.eval_set)
    lines = settings.eval_set.read_text().splitlines()
    lines[2] = '{"id": "x", "question": 5}'
    settings.eval_set.write_text("\n".join(lines) + "\n")
    result = run_graph(raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure and e.step_key == "eval_questions")
    assert "line 3: 'question' must be a non-empty string" in str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert "line 3: 'golden_answers'" in str(failure.event_specific_data.error)  # type: ignore[union-attr]


def test_pubmedqa_recall_at_5(settings: Settings) -> None:
    """The first 100 PubMedQA dev items: each question's own abstract must come back in the top 5."""
    from tests.conftest import write_pubmedqa

    write_pubmedqa(settings.corpus_dir, settings.eval_set, 100)
    result = run_graph()
    recall = metadata(result, "evaluation_report")["recall@5"]
    assert recall >= 0.9, recall
    assert metadata(result, "raw_documents")["dagster/row_count"] == 100


def test_es_index_is_skipped_and_the_rebuild_job_switches_versions(settings: Settings, db: Database) -> None:
    from sage_platform.definitions import defs
    from sage_platform.sensors import weekly_index_rebuild

    _write_corpus(settings.corpus_dir, settings.eval_set)
    instance = DagsterInstance.ephemeral()
    first = run_graph(instance)
    assert first.success
    assert metadata(first, "rag_answers")["retriever"] == "hybrid"
    materialized = {e.materialization.asset_key.path[0] for e in first.get_asset_materialization_events()}
    assert "es_index" not in materialized and "pgvector_index" in materialized
    observations = [
        e.event_specific_data.asset_observation for e in first.all_events if e.event_type_value == "ASSET_OBSERVATION"
    ]  # type: ignore[union-attr]
    assert [(o.asset_key.path, o.metadata["status"].value) for o in observations] == [
        (["es_index"], "skipped: Elasticsearch not configured (set SAGE_ELASTICSEARCH_URL)")
    ]

    rebuilt = defs.resolve_job_def("index_rebuild_job").execute_in_process(instance=instance)
    assert rebuilt.success
    index = metadata(rebuilt, "pgvector_index")
    assert (index["mode"], index["version"]) == ("rebuild", 2) and index["check_recall@10"] >= 0.95
    assert _rows(db, "SELECT version, status FROM index_versions ORDER BY version") == [(1, "previous"), (2, "live")]
    assert weekly_index_rebuild.job_name == "index_rebuild_job" and weekly_index_rebuild.cron_schedule == "0 3 * * 0"
