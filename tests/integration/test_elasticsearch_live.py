"""Against a live Elasticsearch cluster: runs only when SAGE_ELASTICSEARCH_URL is set."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_platform.index import IndexChecks
from sage_platform.index.elasticsearch import ElasticsearchIndexer, es_client
from sage_platform.platform import Platform
from sage_platform.retrieval import ElasticsearchRetriever
from tests.conftest import indexed_platform, pubmedqa_items

LIVE_URL = os.environ.get("SAGE_ELASTICSEARCH_URL")
pytestmark = pytest.mark.skipif(not LIVE_URL, reason="SAGE_ELASTICSEARCH_URL not set: no live Elasticsearch cluster")


@pytest.fixture
def platform(pg_server: str, tmp_path: Path) -> Iterator[Platform]:
    platform = indexed_platform(
        pg_server,
        tmp_path,
        30,
        metadata={"team": "a"},
        elasticsearch_url=LIVE_URL,
        elasticsearch_api_key=os.environ.get("SAGE_ELASTICSEARCH_API_KEY") or None,
        elasticsearch_username=os.environ.get("SAGE_ELASTICSEARCH_USERNAME") or None,
        elasticsearch_password=os.environ.get("SAGE_ELASTICSEARCH_PASSWORD") or None,
    )
    yield platform
    platform.db.close()


def test_live_build_search_and_alias_swap(platform: Platform) -> None:
    client = es_client(platform.settings)
    indexer = ElasticsearchIndexer(client, platform.db)
    model, dim = platform.embedder.model_name, platform.embedder.dimension
    first = indexer.rebuild(model=model, dim=dim, checks=IndexChecks())
    second = indexer.rebuild(model=model, dim=dim, checks=IndexChecks())
    assert second.checks["recall@10"] >= 0.95
    aliases = client.indices.get_alias(name="sage-chunks").body
    assert list(aliases) == [f"sage-chunks-{second.version}"]
    pmid, item = pubmedqa_items(30)[5]
    for mode in ("bm25", "knn", "hybrid"):
        hits = ElasticsearchRetriever(client, platform.embedder, mode=mode).search(item["QUESTION"], k=5)
        assert pmid in {h.doc_id for h in hits}, mode
    assert platform.retriever_named("elasticsearch").search("the of", k=5) == []
    filtered = platform.retriever_named("elasticsearch").search("patients", k=5, filters={"metadata.team": "a"})
    assert filtered and all(h.metadata["team"] == "a" for h in filtered)
    client.indices.delete(index=f"sage-chunks-{first.version}", ignore_unavailable=True)
