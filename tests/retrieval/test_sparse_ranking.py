"""BM25 ranking of full-text matches: a rare word outweighs a common one, in Chinese and English.

Each corpus has a common word in many documents (in one of them many times) and a rare word in a
single document, many times. ``ts_rank`` has no idea which word is rare: it put the document full of
the common word first. BM25 weighs words by how few documents hold them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sage_platform.platform import Platform
from tests.conftest import indexed_corpus_platform

# 中国 (China) is in every document but zh-panda, twelve times in zh-history; 熊猫 (panda) only in zh-panda,
# nine times. No document holds both words, so no document matches the whole query.
CHINESE = {
    "zh-history": "中国历史悠久。" * 12 + "古代的中国有很多朝代。",
    "zh-panda": "熊猫生活在山里。" * 9 + "它们吃竹子。",
    "zh-tea": "中国人喜欢喝茶，绿茶和红茶都很有名。",
    "zh-wall": "长城在中国北方，很长很古老。",
    "zh-food": "中国菜种类很多，饺子和面条很受欢迎。",
}
# Likewise "hospital" (many times in en-hospital) and "zebrafish" (only in en-fish, five times).
ENGLISH = {
    "en-hospital": "The hospital admitted patients. " * 10 + "Hospital staff worked nights.",
    "en-fish": "Zebrafish larvae regenerate fins. " * 5 + "One laboratory keeps them.",
    "en-clinic": "A hospital clinic treats outpatients every morning.",
    "en-ward": "The children's ward of the hospital was renovated.",
    "en-budget": "The hospital budget grew this year after a long and heated public debate in the regional council.",
}


@pytest.fixture(scope="module")
def platform(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("ranking")
    corpus = root / "corpus"
    corpus.mkdir()
    with (corpus / "docs.jsonl").open("w", encoding="utf-8") as out:
        for doc_id, text in {**CHINESE, **ENGLISH}.items():
            out.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
    platform = indexed_corpus_platform(pg_server, root, "sage_tpl_ranking_corpus")
    yield platform
    platform.db.close()


@pytest.mark.parametrize("name", ["sparse", "hybrid"])
@pytest.mark.parametrize(
    ("query", "expected"),
    [("中国 熊猫", "zh-panda"), ("熊猫 中国", "zh-panda"), ("hospital zebrafish", "en-fish")],
)
def test_the_document_with_the_rare_word_ranks_first(platform: Platform, name: str, query: str, expected: str) -> None:
    hits = platform.retriever_named(name).search(query, k=5)
    assert hits[0].doc_id == expected, [(h.doc_id, round(h.score, 4)) for h in hits]


@pytest.mark.parametrize("name", ["sparse", "hybrid"])
def test_a_query_after_a_rule_of_dashes_finds_its_words(platform: Platform, name: str) -> None:
    """A rule of 32 or more minus signs made PostgreSQL's query parser raise; the words after it count."""
    hits = platform.retriever_named(name).search("-" * 40 + " zebrafish larvae", k=5)
    assert hits[0].doc_id == "en-fish"


def test_sparse_scores_follow_bm25_on_the_lexicon(platform: Platform) -> None:
    """A document holding only the common word scores below one holding the rare word once as often."""
    hits = platform.retriever_named("sparse").search("hospital zebrafish", k=10)
    scores = {h.doc_id: h.score for h in hits}
    assert set(scores) == set(ENGLISH)  # each holds one of the words: all are candidates
    assert scores["en-fish"] > 2 * scores["en-hospital"] > 0
    # The one-mention documents differ only by length: the shorter one scores higher (b > 0).
    assert scores["en-clinic"] > scores["en-budget"]


def test_lexicon_counts_documents_not_occurrences(platform: Platform) -> None:
    with platform.db.connect() as conn:
        counts = dict(
            conn.execute("SELECT word, ndoc FROM chunk_lexicon WHERE word IN ('hospit', 'zebrafish', '中国', '熊猫')")
        )
    assert counts == {"hospit": 4, "zebrafish": 1, "中国": 4, "熊猫": 1}
