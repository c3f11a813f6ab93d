"""Dense, sparse and hybrid retrieval on the real embedded PostgreSQL."""

import pytest

from sage_platform.config import Settings
from sage_platform.retrieval import Hit, HybridRetriever
from tests.retrieval.conftest import SearchCorpus

INJECTIONS = [
    "'; DROP TABLE chunks; --",
    '" OR 1=1 --',
    "x' UNION SELECT chunk_id, doc_id, 1, text, '{}'::jsonb FROM chunks --",
    "%(vector)s %s {} $1 \\",
    ") | (!:* & <-> ''",
]


@pytest.mark.parametrize("name", ["dense", "sparse", "hybrid"])
def test_each_retriever_finds_the_document_a_question_was_asked_about(search_corpus: SearchCorpus, name: str) -> None:
    retriever = search_corpus.platform.retriever_named(name)
    found = 0
    for pmid, item in search_corpus.pubmed[3:23]:
        hits = retriever.search(item["QUESTION"], k=5)
        assert len(hits) <= 5
        assert all(isinstance(h, Hit) and h.chunk_id and h.text for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        found += pmid in {h.doc_id for h in hits}
    assert found >= 14, f"{name} found {found} of 20"


@pytest.mark.parametrize("name", ["dense", "sparse", "hybrid"])
def test_a_batch_of_queries_gets_what_each_query_gets_alone(search_corpus: SearchCorpus, name: str) -> None:
    """``search_many`` (the evaluation's batched path) skips empty queries and keeps each one's k and order."""
    retriever = search_corpus.platform.retriever_named(name)
    queries = [search_corpus.pubmed[5][1]["QUESTION"], "", "the of and", search_corpus.pubmed[6][1]["QUESTION"]]
    batch = retriever.search_many(queries, k=4)
    alone = [retriever.search(q, k=4) for q in queries]
    assert [[h.chunk_id for h in hits] for hits in batch] == [[h.chunk_id for h in hits] for hits in alone]
    assert [len(hits) for hits in batch] == [4, 0, 0, 4]


@pytest.mark.parametrize(
    ("name", "method"), [("dense", "search_vector"), ("sparse", "search"), ("hybrid", "search_with_vector")]
)
def test_a_batch_of_queries_is_searched_on_several_connections_at_once(
    search_corpus: SearchCorpus, name: str, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from sage_platform.retrieval import _parallel

    monkeypatch.setattr(_parallel, "SEARCH_THREADS", 3)
    retriever = search_corpus.platform.retriever_named(name)
    queries = [item["QUESTION"] for _, item in search_corpus.pubmed[3:9]]
    expected = [[h.chunk_id for h in retriever.search(q, k=4)] for q in queries]
    together = threading.Barrier(2, timeout=30)  # the first two searches must be in flight at once
    search = getattr(retriever, method)
    calls = []

    def meeting(*args: object, **kwargs: object) -> object:
        calls.append(threading.get_ident())
        if len(calls) <= 2:
            together.wait()
        return search(*args, **kwargs)

    monkeypatch.setattr(retriever, method, meeting)
    batch = retriever.search_many(queries, k=4)
    assert [[h.chunk_id for h in hits] for hits in batch] == expected  # in the order asked
    assert len(calls) == len(queries) and len(set(calls)) >= 2


def test_hits_carry_metadata_for_citations(search_corpus: SearchCorpus) -> None:
    hit = search_corpus.platform.retriever_named("hybrid").search("incremental ingestion of documents", k=3)[0]
    assert hit.doc_id == "notes.md"
    assert hit.metadata["source"] == "notes.md" and hit.metadata["title"] == "Notes"
    assert hit.metadata["language"] == "english" and "position" in hit.metadata


@pytest.mark.parametrize("name", ["dense", "sparse", "hybrid"])
def test_a_chinese_query_finds_chinese_documents(search_corpus: SearchCorpus, name: str) -> None:
    retriever = search_corpus.platform.retriever_named(name)
    assert retriever.search("大熊猫吃竹子", k=3)[0].doc_id == "zh-panda"
    assert retriever.search("长城", k=3)[0].doc_id == "zh-wall"


@pytest.mark.parametrize("name", ["dense", "sparse", "hybrid"])
def test_filters_apply_in_sql_and_still_return_k_rows(search_corpus: SearchCorpus, name: str) -> None:
    retriever = search_corpus.platform.retriever_named(name)
    question = search_corpus.pubmed[30][1]["QUESTION"]  # an "even"/"odd" document, not "rare"
    rare_ids = {pmid for pmid, _ in search_corpus.pubmed[:3]}
    if name == "sparse":  # full text needs shared words: ask about a rare document, filter to rare ones
        question = search_corpus.pubmed[0][1]["QUESTION"]
    hits = retriever.search(question, k=4, filters={"metadata.category": "rare"})
    assert {h.doc_id for h in hits} <= rare_ids
    if name != "sparse":  # dense rows all qualify, so the iterative scan must fill k
        assert len(hits) == 4
    else:
        assert hits
    only = retriever.search(question, k=3, filters={"doc_id": "notes.md"})
    assert {h.doc_id for h in only} <= {"notes.md"}
    chinese = retriever.search("中国", k=10, filters={"language": "zh"})
    assert chinese and {h.doc_id for h in chinese} <= {"zh-panda", "zh-wall", "zh-tea"}


@pytest.mark.parametrize("name", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize("query", ["", "   ", "the of and a", "?!... ---", "。，"])
def test_empty_stopword_and_punctuation_queries_return_nothing(
    search_corpus: SearchCorpus, name: str, query: str
) -> None:
    assert search_corpus.platform.retriever_named(name).search(query, k=5) == []


@pytest.mark.parametrize("name", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize("attack", INJECTIONS)
def test_sql_metacharacters_in_queries_and_filters_are_harmless(
    search_corpus: SearchCorpus, name: str, attack: str
) -> None:
    retriever = search_corpus.platform.retriever_named(name)
    hits = retriever.search(attack, k=5)
    with search_corpus.platform.db.connect() as conn:
        stored = dict(conn.execute("SELECT chunk_id, text FROM chunk_index").fetchall())
    # Whatever the words matched are real chunks with their real text and metadata: no row came from the
    # injected SQL (a UNION'd row would carry '{}' metadata and score 1).
    assert all(stored.get(h.chunk_id) == h.text and {"source", "position", "language"} <= set(h.metadata) for h in hits)
    assert hits == retriever.search(attack, k=5)
    if name == "dense":  # the attack is only text to embed: the same neighbours as its vector's
        vector = search_corpus.platform.embedder.embed([attack])[0]
        assert [h.chunk_id for h in hits] == [h.chunk_id for h in retriever.search_vector(vector, 5, query=attack)]  # type: ignore[attr-defined]
    assert retriever.search("patients", k=3, filters={"doc_id": attack}) == []
    assert retriever.search("patients", k=3, filters={"metadata.category": attack}) == []
    with search_corpus.platform.db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] > 0  # type: ignore[index]
        assert conn.execute("SELECT count(*) FROM chunk_index").fetchone()[0] > 0  # type: ignore[index]


def test_unknown_names_and_filter_keys_list_the_valid_ones(search_corpus: SearchCorpus) -> None:
    with pytest.raises(ValueError, match="unknown retriever 'bm42'; valid: dense, sparse, hybrid, elasticsearch"):
        search_corpus.platform.retriever_named("bm42")
    retriever = search_corpus.platform.retriever_named("hybrid")
    with pytest.raises(
        ValueError, match=r"unknown filter key 'colour'; valid: doc_id, source, title, language, metadata\.<name>"
    ):
        retriever.search("x", filters={"colour": "red"})
    with pytest.raises(ValueError, match="unknown filter key 'metadata.bad key'"):
        retriever.search("", filters={"metadata.bad key": "x"})
    with pytest.raises(ValueError, match="unknown text search language 'klingon'"):
        retriever.search("patients", filters={"language": "klingon"})


def test_hybrid_fuses_both_sides_and_the_reranker_sees_every_candidate(search_corpus: SearchCorpus) -> None:
    platform = search_corpus.platform
    seen: list[int] = []
    asked: list[str] = []

    class ReverseReranker:
        def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
            seen.append(len(hits))
            asked.append(query)
            return list(reversed(hits))

    plain = HybridRetriever(platform.db, platform.embedder, dense_depth=20, sparse_depth=20, fusion="rrf")
    reranked = HybridRetriever(
        platform.db, platform.embedder, dense_depth=20, sparse_depth=20, fusion="rrf", reranker=ReverseReranker()
    )
    query = search_corpus.pubmed[10][1]["QUESTION"]
    fused = plain.search(query, k=40)
    top = reranked.search(query, k=3)
    assert seen and seen[0] > 3 and seen[0] == len(fused)  # all fused candidates, not the final 3
    assert asked == [query]
    assert [h.chunk_id for h in top] == [h.chunk_id for h in reversed(fused)][:3]
    # RRF: a chunk found by both sides outranks one found by a single side at the same rank.
    dense_ids = [h.chunk_id for h in platform.retriever_named("dense").search(query, k=20)]
    sparse_ids = [h.chunk_id for h in platform.retriever_named("sparse").search(query, k=20)]
    both = set(dense_ids) & set(sparse_ids)
    assert fused[0].chunk_id in both
    expected = sum(1 / (60 + ids.index(fused[0].chunk_id) + 1) for ids in (dense_ids, sparse_ids))
    assert fused[0].score == pytest.approx(expected)


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_convex_fusion_weighs_similarity_and_normalised_bm25(search_corpus: SearchCorpus, weight: float) -> None:
    platform = search_corpus.platform
    query = search_corpus.pubmed[12][1]["QUESTION"]
    vector = platform.embedder.embed([query])[0]
    hybrid = HybridRetriever(platform.db, platform.embedder, dense_depth=20, sparse_depth=20, dense_weight=weight)
    fused = hybrid.search_with_vector(query, vector, k=10)
    sparse = {h.chunk_id: h.score for h in platform.retriever_named("sparse").search(query, k=200)}
    with platform.db.connect() as conn:
        similarity = dict(
            conn.execute(
                "SELECT chunk_id, 1 - (embedding <=> %s) FROM chunk_index WHERE chunk_id = ANY(%s)",
                (vector, [h.chunk_id for h in fused]),
            ).fetchall()
        )
    top_bm25 = max(sparse.values())
    for hit in fused:
        expected = weight * similarity[hit.chunk_id] + (1 - weight) * sparse.get(hit.chunk_id, 0.0) / top_bm25
        assert hit.score == pytest.approx(expected, abs=1e-5)
    assert [h.score for h in fused] == sorted((h.score for h in fused), reverse=True)
    if weight == 1.0:  # pure similarity: the dense ranking
        dense = platform.retriever_named("dense").search(query, k=10)
        assert [h.chunk_id for h in fused] == [h.chunk_id for h in dense]


def test_hybrid_defaults_are_the_settings_defaults_and_bad_values_are_named(search_corpus: SearchCorpus) -> None:
    platform = search_corpus.platform
    hybrid = HybridRetriever(platform.db, platform.embedder)
    defaults = Settings.model_fields
    assert (hybrid.dense_depth, hybrid.sparse_depth, hybrid.max_candidates, hybrid.ef_search) == tuple(
        defaults[name].default
        for name in ("hybrid_dense_depth", "hybrid_sparse_depth", "sparse_max_candidates", "hnsw_ef_search")
    )
    assert (hybrid.fusion, hybrid.dense_weight) == (
        defaults["hybrid_fusion"].default,
        defaults["hybrid_dense_weight"].default,
    )
    assert len(hybrid.search(search_corpus.pubmed[7][1]["QUESTION"])) == 10  # k defaults to 10
    with pytest.raises(ValueError, match=r"^unknown fusion 'bm25'; valid: convex, rrf$"):
        HybridRetriever(platform.db, platform.embedder, fusion="bm25")
    for weight in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"^dense_weight must be between 0 and 1, not {weight}$"):
            HybridRetriever(platform.db, platform.embedder, dense_weight=weight)
