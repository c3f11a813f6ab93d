"""The Elasticsearch indexer and retriever through the official client, against a recording
loopback stand-in (no cluster can run here; tests/integration has the live-cluster tests)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_platform.config import Settings
from sage_platform.index import IndexCheckFailed, IndexChecks
from sage_platform.index.elasticsearch import ElasticsearchIndexer, es_client
from sage_platform.index.es_bodies import ALIAS, rrf_body
from sage_platform.pipeline import build_indexes
from sage_platform.platform import Platform
from sage_platform.retrieval import ElasticsearchRetriever
from tests.conftest import indexed_platform
from tests.es_stub import elasticsearch_stub


@pytest.fixture
def platform(pg_server: str, tmp_path: Path) -> Iterator[Platform]:
    platform = indexed_platform(pg_server, tmp_path, 8)
    yield platform
    platform.db.close()


def test_build_check_alias_swap_then_difference_sync(platform: Platform) -> None:
    model, dim = platform.embedder.model_name, platform.embedder.dimension
    with elasticsearch_stub() as es:
        client = es_client(Settings(elasticsearch_url=es.url, elasticsearch_api_key="secret-key"))
        indexer = ElasticsearchIndexer(client, platform.db, bulk_chunk_size=50, shards=2, replicas=1)
        first = indexer.sync(model=model, dim=dim, checks=IndexChecks(sample_queries=20))
        assert first.mode == "rebuild"
        one = f"sage-chunks-{first.version}"  # versions are numbered across both backends
        with platform.db.connect() as conn:
            chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]  # type: ignore[index]
        assert first.rows == chunks == len(es.indices[one]) and first.checks["recall@10"] == 1.0
        created = [body for method, path, body in es.requests if method == "PUT" and path == f"/{one}"]
        assert created[0]["mappings"]["properties"]["embedding"]["dims"] == dim
        settings = created[0]["settings"]
        assert settings["number_of_shards"] == 2 and settings["number_of_replicas"] == 0  # loaded once, no copies
        assert es.bodies("PUT", f"/{one}/_settings") == [{"index": {"refresh_interval": "1s", "number_of_replicas": 1}}]
        assert es.bodies("POST", "/_aliases") == [{"actions": [{"add": {"index": one, "alias": ALIAS}}]}]

        second = indexer.rebuild(model=model, dim=dim, checks=IndexChecks(sample_queries=20))
        two = f"sage-chunks-{second.version}"
        assert second.version > first.version
        assert es.bodies("POST", "/_aliases")[-1] == {
            "actions": [{"remove": {"index": one, "alias": ALIAS}}, {"add": {"index": two, "alias": ALIAS}}]
        }
        assert es.aliases[ALIAS] == {two} and one in es.indices  # kept for rollback

        # Delete one document from the corpus: the sync sends just those deletions.
        lines = (platform.settings.corpus_dir / "docs.jsonl").read_text().splitlines()
        (platform.settings.corpus_dir / "docs.jsonl").write_text("\n".join(lines[1:]) + "\n")
        build_indexes(platform)
        bulk_before = len(es.bodies("PUT", "/_bulk"))  # the client sends bulk as PUT
        third = indexer.sync(model=model, dim=dim, checks=IndexChecks())
        assert third.mode == "incremental" and third.inserted == 0 and third.deleted > 0
        sent = [line for body in es.bodies("PUT", "/_bulk")[bulk_before:] for line in body]
        assert sent and all(set(line) == {"delete"} for line in sent)
        assert len(es.indices[two]) == third.rows == chunks - third.deleted


def test_retriever_sends_the_rrf_body_and_reads_hits(platform: Platform) -> None:
    with elasticsearch_stub() as es:
        es.canned_hits = [
            {"_id": "c9", "_score": 0.03, "_source": {"chunk_id": "c9", "doc_id": "d9", "text": "found text",
             "title": "T", "source": "d9.md", "position": 2, "language": "english", "metadata": {"team": "a"}}}
        ]  # fmt: skip
        client = es_client(Settings(elasticsearch_url=es.url, elasticsearch_username="u", elasticsearch_password="p"))
        retriever = ElasticsearchRetriever(client, platform.embedder, depth=30, num_candidates=80)
        hits = retriever.search("content chunking", k=4, filters={"metadata.team": "a"})
        vector = platform.embedder.embed(["content chunking"])[0].tolist()
        sent = es.bodies("POST", f"/{ALIAS}/_search")[-1]
        expected = rrf_body("content chunking", vector, 4, depth=30, num_candidates=80, filters={"metadata.team": "a"})
        assert sent["retriever"]["rrf"]["retrievers"][0] == expected["retriever"]["rrf"]["retrievers"][0]
        assert sent["retriever"]["rrf"]["retrievers"][1]["knn"]["query_vector"] == pytest.approx(vector, abs=1e-6)
        assert sent["size"] == 4 and sent["retriever"]["rrf"]["rank_constant"] == 60
        assert [(h.chunk_id, h.doc_id, h.score, h.metadata["team"], h.metadata["position"]) for h in hits] == [
            ("c9", "d9", 0.03, "a", 2)
        ]
        assert retriever.search("  ", k=4) == [] and len(es.bodies("POST", f"/{ALIAS}/_search")) == 1
        for mode, key in (("bm25", "query"), ("knn", "knn")):
            ElasticsearchRetriever(client, platform.embedder, mode=mode).search("chunking", k=2)
            assert key in es.bodies("POST", f"/{ALIAS}/_search")[-1]


def test_the_recall_gate_refuses_an_index_whose_search_misses_neighbours(pg_server: str, tmp_path: Path) -> None:
    """The stand-in's knn examines only num_candidates documents: 10 of ~100 misses true neighbours."""
    platform = indexed_platform(pg_server, tmp_path, 40)
    model, dim = platform.embedder.model_name, platform.embedder.dimension
    try:
        with elasticsearch_stub() as es:
            indexer = ElasticsearchIndexer(es_client(Settings(elasticsearch_url=es.url)), platform.db)
            good = indexer.sync(model=model, dim=dim, checks=IndexChecks(sample_queries=50, ef_search=1000))
            assert good.checks["recall@10"] == 1.0 and good.rows > 80
            with pytest.raises(IndexCheckFailed, match=r"recall@10 0\.\d+ against exact search is below 0\.95"):
                indexer.rebuild(model=model, dim=dim, checks=IndexChecks(sample_queries=50, ef_search=10))
            assert es.aliases[ALIAS] == {f"sage-chunks-{good.version}"}  # readers stay on the good index
            with platform.db.connect() as conn:
                failed = conn.execute(
                    "SELECT (checks->>'recall@10')::float FROM index_versions WHERE status = 'failed'"
                ).fetchone()
            assert failed is not None and failed[0] < 0.9
    finally:
        platform.db.close()
