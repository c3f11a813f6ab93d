"""One test (at least) for every operator of the library, on the real platform where it has one."""

from __future__ import annotations

import io
import json
import queue
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sage_platform import dataflow as df
from sage_platform.evaluation import compute
from sage_platform.generation.extractive import ExtractiveAnswerer
from sage_platform.generation.prompts import rag_messages
from sage_platform.platform import Platform
from sage_platform.retrieval.types import ranked_doc_ids
from tests._http import send_json, serve
from tests.dataflow.conftest import questions
from tests.es_stub import elasticsearch_stub
from tests.openai_stub import openai_stub


def run(records: Any, *steps: tuple[str, Any, dict[str, Any]]) -> df.PipelineResult:
    env = df.LocalEnvironment("library")
    stream = env.from_batch(records)
    for method, function, config in steps:
        stream = getattr(stream, method)(function, config)
    return env.submit()


# Sources
def test_file_source_reads_txt_jsonl_and_csv(tmp_path: Path) -> None:
    (tmp_path / "q.txt").write_text("first\n\n  second  \n")
    (tmp_path / "q.jsonl").write_text('{"query": "a", "n": 1}\n\n{"query": "b", "n": 2}\n')
    (tmp_path / "q.csv").write_text("query,n\nx,1\n\ny,2\n")
    outputs = {}
    for name in ("q.txt", "q.jsonl", "q.csv"):
        env = df.LocalEnvironment("files")
        env.from_source(df.FileSource, {"file_path": str(tmp_path / name)}).map(lambda r: r)
        outputs[name] = env.submit().outputs
    assert outputs["q.txt"] == [{"query": "first"}, {"query": "second"}]
    assert outputs["q.jsonl"] == [{"query": "a", "n": 1}, {"query": "b", "n": 2}]
    assert outputs["q.csv"] == [{"query": "x", "n": "1"}, {"query": "y", "n": "2"}]


def test_jsonl_source_names_the_bad_line(tmp_path: Path) -> None:
    (tmp_path / "records.data").write_text('{"a": 1}\n{"a": \n')
    env = df.LocalEnvironment("bad")
    env.from_source(df.JSONLSource, {"file_path": str(tmp_path / "records.data")}).map(lambda r: r)
    with pytest.raises(df.OperatorError, match=r"records.data:2: not JSON"):
        env.submit()


def test_table_source_streams_any_query(platform_env: Platform) -> None:
    env = df.LocalEnvironment("table")
    env.from_source(df.TableSource, {"query": "SELECT doc_id FROM documents WHERE doc_id = ANY(:ids) ORDER BY doc_id",
                                     "params": {"ids": ["a", questions(1)[0][0]]}}).map(lambda r: r)  # fmt: skip
    assert env.submit().outputs == [{"doc_id": questions(1)[0][0]}]


def test_api_source_reads_a_json_list() -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/items":
                send_json(self, 200, {"items": [{"query": "one"}, {"query": "two"}]})
            else:
                send_json(self, 404, {})

    with serve(Handler) as url:
        env = df.LocalEnvironment("api")
        env.from_source(df.APISource, {"url": f"{url}/items", "records_key": "items"}).map(lambda r: r)
        assert env.submit().outputs == [{"query": "one"}, {"query": "two"}]
        env = df.LocalEnvironment("api404")
        env.from_source(df.APISource, {"url": f"{url}/missing"}).map(lambda r: r)
        with pytest.raises(df.OperatorError, match="answered 404"):
            env.submit()


def test_stream_source_over_an_iterator_and_the_inbox(tmp_path: Path) -> None:
    env = df.LocalEnvironment("iterator")
    env.from_source(df.StreamSource, {"iterator": iter([1, 2, 3])}).map(lambda r: r)
    assert env.submit().outputs == [1, 2, 3]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.txt").write_text("alpha")
    seen: queue.Queue[Any] = queue.Queue()
    env = df.LocalEnvironment("inbox")
    env.from_source(df.StreamSource, {"inbox": str(inbox)}).sink(lambda r: seen.put(r))
    run_handle = env.submit(autostop=False)
    assert seen.get(timeout=10) == {"path": "a.txt", "text": "alpha"}
    (inbox / "b.txt").write_text("beta")
    assert seen.get(timeout=10) == {"path": "b.txt", "text": "beta"}
    run_handle.stop(timeout=10)


# Indexing
def test_chunker_embedder_and_pgvector_writer(platform_env: Platform) -> None:
    text = "\n\n".join(questions(3)[2][1]["CONTEXTS"])
    result = run([{"doc_id": "doc-1", "text": text, "source": "test"}],
                 ("flatmap", df.Chunker, {}), ("map", df.Embedder, {}), ("sink", df.PgVectorWriter, {"table": "my_vectors"}))  # fmt: skip
    chunks = platform_env.splitter.split(text)
    assert result["Chunker"].records_out == len(chunks) == result["PgVectorWriter"].records_out
    vector = platform_env.embedder.embed([chunks[0].text])[0]
    with psycopg.connect(platform_env.db.url) as conn:
        nearest = conn.execute("SELECT text, metadata FROM my_vectors ORDER BY embedding <=> %s::vector LIMIT 1",
                               (str(vector.tolist()),)).fetchone()  # fmt: skip
    assert nearest == (chunks[0].text, {"source": "test"})
    again = run([{"doc_id": "doc-1", "text": text}], ("flatmap", df.Chunker, {}), ("map", df.Embedder, {}),
                ("sink", df.PgVectorWriter, {"table": "my_vectors"}))  # fmt: skip
    assert again["PgVectorWriter"].records_in == len(chunks)
    with psycopg.connect(platform_env.db.url) as conn:
        assert conn.execute("SELECT count(*) FROM my_vectors").fetchone() == (len(chunks),)  # upserts, no copies


def test_elasticsearch_writer_sends_bulk_chunk_documents() -> None:
    from elasticsearch import Elasticsearch

    with elasticsearch_stub() as es:
        client = Elasticsearch(es.url)
        records = [{"chunk_id": "c1", "doc_id": "d", "position": 0, "text": "hello", "embedding": [0.5, 0.5]}]
        run(records, ("sink", df.ElasticsearchWriter, {"client": client, "index": "mine"}))
        assert es.indices["mine"]["c1"]["text"] == "hello"
        assert es.indices["mine"]["c1"]["embedding"] == [0.5, 0.5]


# Retrieval
@pytest.mark.parametrize("operator,name", [(df.DenseRetriever, "dense"), (df.SparseRetriever, "sparse"),
                                           (df.HybridRetriever, "hybrid")])  # fmt: skip
def test_retrievers_equal_the_platform_s(platform_env: Platform, operator: Any, name: str) -> None:
    asked = [{"query": item["QUESTION"]} for _, item in questions(6)]
    outputs = run(asked, ("map", operator, {"top_k": 5})).outputs
    reference = platform_env.retriever_named(name).search_many([q["query"] for q in asked], k=5)
    assert [[h["chunk_id"] for h in r["retrieved"]] for r in outputs] == [
        [h.chunk_id for h in hits] for hits in reference
    ]
    assert outputs[0]["context"] == [h.text for h in reference[0]]


def test_elasticsearch_retriever_reads_the_alias(platform_env: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    with elasticsearch_stub() as es:
        es.canned_hits = [{"_id": "c9", "_score": 2.0, "_source": {"chunk_id": "c9", "doc_id": "d9", "text": "nine",
                                                                    "metadata": {}}}]  # fmt: skip
        monkeypatch.setenv("SAGE_ELASTICSEARCH_URL", es.url)
        outputs = run([{"query": "what is nine"}], ("map", df.ElasticsearchRetriever, {"top_k": 3})).outputs
        assert [(h["doc_id"], h["text"]) for h in outputs[0]["retrieved"]] == [("d9", "nine")]
        assert any(path.startswith("/sage-chunks/_search") for _, path, _ in es.requests)


def test_reranker_says_what_it_falls_back_to(platform_env: Platform, caplog: pytest.LogCaptureFixture) -> None:
    hits = [{"chunk_id": str(i), "doc_id": str(i), "score": 0.0, "text": t, "metadata": {}}
            for i, t in enumerate(["Bananas are yellow fruit.", "The heart pumps blood through arteries."])]  # fmt: skip
    out = run([{"query": "cardiac blood flow", "retrieved": hits}], ("map", df.Reranker, {"model": "no/such-model"}))
    record = out.outputs[0]
    assert [h["chunk_id"] for h in record["retrieved"]] == ["1", "0"]
    assert record["reranker"].startswith("bi-encoder cosine (") and record["reranker"].endswith(
        "no cross-encoder model on this machine"
    )
    assert "no cross-encoder model on this machine" in caplog.text


# Prompts and generation
def test_qa_promptor_default_is_the_platform_prompt_and_templates_fill(platform_env: Platform) -> None:
    asked = [{"query": questions(1)[0][1]["QUESTION"]}]
    record = run(asked, ("map", df.DenseRetriever, {"top_k": 5}), ("map", df.QAPromptor, {"context_k": 2})).outputs[0]
    hits = platform_env.retriever_named("dense").search(asked[0]["query"], k=5)[:2]
    assert record["prompt"] == rag_messages(asked[0]["query"], hits)
    assert record["context_tokens"] > 0
    templated = run([{"query": "q?", "context": ["one", "two"], "lang": "en"}],
                    ("map", df.QAPromptor, {"template": "[{lang}] {context} | {query}", "system": "S"})).outputs[0]  # fmt: skip
    assert templated["prompt"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "[en] one\n\ntwo | q?"},
    ]


def test_chat_promptor_keeps_the_history(platform_env: Platform) -> None:
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    record = run([{"query": "and now?", "history": history, "context": ["fact"]}],
                 ("map", df.ChatPromptor, {"system": "Be brief."})).outputs[0]  # fmt: skip
    assert record["prompt"] == [{"role": "system", "content": "Be brief.\n\nContext:\n[1] fact"}, *history,
                                {"role": "user", "content": "and now?"}]  # fmt: skip


def test_openai_and_vllm_generators_call_the_server(platform_env: Platform) -> None:
    with openai_stub() as stub:
        prompt = [{"role": "user", "content": "Context:\n[1] (doc-7) text\n\nQuestion: why?"}]
        out = run([{"prompt": prompt}], ("map", df.VLLMGenerator, {"model": "m", "base_url": stub.url})).outputs[0]
        assert out["answer"] == "stub answer from doc-7 to: why?"
        assert out["usage"] == {"prompt_tokens": 1, "completion_tokens": 1} and out["generator"] == "llm (m)"
        assert stub.requests[0][1]["messages"] == prompt and out["latency_ms"] > 0
    assert df.VLLMGenerator.default_base_url == "http://localhost:8000/v1"
    with pytest.raises(ValueError, match="OpenAIGenerator needs a model"):
        run([{"prompt": prompt}], ("map", df.OpenAIGenerator, {}))


def test_extractive_generator_is_the_platform_s_answerer(platform_env: Platform) -> None:
    asked = [{"query": item["QUESTION"]} for _, item in questions(4)]
    outputs = run(asked, ("map", df.DenseRetriever, {"top_k": 5}), ("map", df.ExtractiveGenerator, {})).outputs
    hits = platform_env.retriever_named("dense").search_many([q["query"] for q in asked], k=5)
    expected = ExtractiveAnswerer(platform_env.embedder).answer_many([q["query"] for q in asked], hits)
    assert [o["answer"] for o in outputs] == expected
    assert all(o["usage"]["completion_tokens"] > 0 and o["context_tokens"] > 0 for o in outputs)
    assert df.LocalGenerator is df.ExtractiveGenerator


# Evaluation
def scored_records() -> list[dict[str, Any]]:
    return [
        {"answer": "the cat sat on the mat", "references": ["the cat sat on the mat"], "label": "yes",
         "retrieved": [{"chunk_id": "1", "doc_id": "a", "text": "alpha beta gamma"}], "relevant_doc_ids": ["a"],
         "latency_ms": 10.0, "usage": {"prompt_tokens": 30, "completion_tokens": 5}, "context_tokens": 3},
        {"answer": "no, a dog ran", "references": "a dog sat down", "label": "no",
         "retrieved": [{"chunk_id": "2", "doc_id": "b", "text": "delta epsilon"}], "relevant_doc_ids": ["c"],
         "latency_ms": 30.0, "usage": {"prompt_tokens": 50, "completion_tokens": 7}, "context_tokens": 1},
    ]  # fmt: skip


def test_evaluators_score_records_and_the_run(platform_env: Platform) -> None:
    evaluators = [df.BLEU, df.ROUGE, df.F1, df.ExactMatch, df.Accuracy, df.Recall, df.Latency, df.TokenCount,
                  df.ContextCompression]  # fmt: skip
    result = run(scored_records(), *[("map", e, {"k": 1} if e is df.Recall else {}) for e in evaluators])
    predictions = [r["answer"] for r in scored_records()]
    references = [["the cat sat on the mat"], ["a dog sat down"]]
    summary = result.summary
    assert summary["BLEU"]["bleu"] == pytest.approx(compute("bleu", predictions, references))
    assert summary["ROUGE"]["rougeL"] == pytest.approx(compute("rougeL", predictions, references))
    assert summary["F1"]["f1"] == pytest.approx(compute("f1", predictions, references))
    assert summary["ExactMatch"]["exact_match"] == compute("exact_match", predictions, references) > 0
    assert summary["Accuracy"]["accuracy"] == 0.5  # "no, a dog ran" reads as no; the first answer names no label
    assert summary["Recall"]["recall@1"] == 0.5
    assert summary["Latency"]["latency_p50"] == 20.0 and summary["Latency"]["latency_mean"] == 20.0
    assert summary["TokenCount"] == {"prompt_tokens": 40.0, "completion_tokens": 6.0, "prompt_tokens_total": 80,
                                     "completion_tokens_total": 12}  # fmt: skip
    assert summary["ContextCompression"]["compression_ratio"] == pytest.approx(5 / 4)  # 3+2 retrieved over 3+1 given
    first = result.outputs[0]["scores"]
    assert first["exact_match"] > 0 and first["recall@1"] == 1.0 and first["latency_ms"] == 10.0
    assert ranked_doc_ids  # imported for Recall's definition


def test_compute_measures_the_run() -> None:
    assert compute("latency_p99", [1.0, 2.0, 100.0]) == pytest.approx(98.04)
    assert compute("compression_ratio", [10, 10], [5, 5]) == 2.0
    with pytest.raises(ValueError, match="bleu needs references"):
        compute("bleu", ["x"])


# Sinks
def test_terminal_and_file_sinks(tmp_path: Path) -> None:
    stream = io.StringIO()
    run([{"query": "q", "answer": "a"}, {"x": 1}], ("sink", df.TerminalSink, {"stream": stream}))
    assert stream.getvalue() == 'Q: q\nA: a\n{"x": 1}\n'
    path = tmp_path / "out" / "answers.jsonl"
    run(
        [{"query": "q", "answer": "a", "big": "x"}],
        ("sink", df.FileSink, {"file_path": str(path), "fields": ["query", "answer"]}),
    )
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"query": "q", "answer": "a"}]


@pytest.fixture
def answers_table(platform_env: Platform) -> Iterator[str]:
    with psycopg.connect(platform_env.db.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE my_answers (query text, answer text, extra jsonb)")
        conn.execute("INSERT INTO my_answers VALUES ('old', 'row', null)")
    yield platform_env.db.url
    with psycopg.connect(platform_env.db.url, autocommit=True) as conn:
        conn.execute("DROP TABLE my_answers")


def rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT query, answer, extra FROM my_answers ORDER BY query").fetchall()


def test_table_sink_appends_and_replaces_in_one_transaction(answers_table: str) -> None:
    run([{"query": "q1", "answer": "a1", "extra": {"k": 1}}], ("sink", df.TableSink, {"table": "my_answers"}))
    assert rows(answers_table) == [("old", "row", None), ("q1", "a1", {"k": 1})]

    def explode(record: dict[str, Any]) -> dict[str, Any]:
        if record["query"] == "q149":
            raise RuntimeError("generator down")
        return record

    env = df.LocalEnvironment("replace")
    env.from_batch([{"query": f"q{n}", "answer": "x"} for n in range(150)]).map(explode).sink(
        df.DatabaseSink, {"table": "my_answers", "columns": ["query", "answer"], "replace": True})  # fmt: skip
    with pytest.raises(df.OperatorError, match="generator down"):
        env.submit()
    assert len(rows(answers_table)) == 2  # the failed run's delete and inserts were rolled back
    run([{"query": "new", "answer": "only"}], ("sink", df.TableSink, {"table": "my_answers", "replace": True,
                                                                      "columns": ["query", "answer"]}))  # fmt: skip
    assert rows(answers_table) == [("new", "only", None)]


def test_dagster_metadata_sink_becomes_op_metadata() -> None:
    env = df.DagsterEnvironment("preview", {"partition_size": 3})
    env.from_batch([{"n": n} for n in range(5)]).sink(df.DagsterMetadataSink, {"preview_rows": 2})
    result = env.submit()
    assert result.summary["DagsterMetadataSink"]["records"] == 5
    assert {r["n"] for r in result.summary["DagsterMetadataSink"]["preview"]} <= set(range(5))


def test_run_figures_cover_every_worker_and_partition() -> None:
    records = scored_records() * 10
    predictions = [r["answer"] for r in records]
    references = [[r["references"]] if isinstance(r["references"], str) else r["references"] for r in records]
    expected = compute("bleu", predictions, references)
    parallel = df.LocalEnvironment("parallel")
    parallel.from_batch(records).map(df.BLEU, parallelism=3).map(df.TokenCount, parallelism=2)
    partitioned = df.DagsterEnvironment("partitioned", {"partition_size": 3})
    partitioned.from_batch(records).map(df.BLEU).map(df.TokenCount)
    for env in (parallel, partitioned):
        summary = env.submit().summary
        assert summary["BLEU"] == {"bleu": pytest.approx(expected)}
        assert summary["TokenCount"]["prompt_tokens_total"] == 800
