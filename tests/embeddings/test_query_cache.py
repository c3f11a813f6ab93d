"""A query searched for again is not embedded again, and gets the model's own vector."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from sage_platform.embeddings.local import LocalEmbedder
from sage_platform.embeddings.query_cache import MAX_KEPT_CHARS, QueryEmbedder
from sage_platform.platform import Platform
from tests.conftest import indexed_platform, pubmedqa_items


class Counted:
    """The real local model's ``embed``, counting the texts it is given."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.real = embed
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += texts
        return self.real(texts)


@pytest.fixture(scope="module")
def model() -> LocalEmbedder:
    return LocalEmbedder()


def _counting(model: LocalEmbedder, monkeypatch: pytest.MonkeyPatch) -> Counted:
    counted = Counted(model.embed)
    monkeypatch.setattr(model, "embed", counted)
    return counted


def test_a_query_asked_again_gets_the_same_vector_without_the_model(
    model: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = _counting(model, monkeypatch)
    queries = QueryEmbedder(model)
    first = queries.embed(["what is a lease?", "how are turns saved?", "what is a lease?"])
    assert counted.texts == ["what is a lease?", "how are turns saved?"]  # a repeat in one call, once
    np.testing.assert_allclose(first, counted.real(["what is a lease?", "how are turns saved?", "what is a lease?"]))

    again = queries.embed(["how are turns saved?", "a new one", "what is a lease?"])
    assert counted.texts[2:] == ["a new one"]
    np.testing.assert_array_equal(again[[0, 2]], first[[1, 0]])
    again[:] = 0  # the caller's array is its own
    np.testing.assert_array_equal(queries.embed(["what is a lease?"])[0], first[0])
    assert queries.embed([]).shape == (0, model.dimension)


def test_the_least_recently_used_go_first_and_long_texts_are_not_kept(
    model: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = _counting(model, monkeypatch)
    queries = QueryEmbedder(model, capacity=2)
    queries.embed(["one", "two"])
    queries.embed(["one"])  # now the most recent
    queries.embed(["three"])  # "two" goes
    queries.embed(["one", "three", "two"])
    assert counted.texts == ["one", "two", "three", "two"]

    passage = "long " * (MAX_KEPT_CHARS // 5 + 1)
    queries.embed([passage])
    queries.embed([passage])
    assert counted.texts[4:] == [passage, passage]

    queries.forget()
    queries.embed(["one"])
    assert counted.texts[6:] == ["one"]


@pytest.fixture
def platform(pg_server: str, tmp_path: Path) -> Iterator[Platform]:
    platform = indexed_platform(pg_server, tmp_path, 8)
    yield platform
    platform.db.close()


@pytest.mark.parametrize("name", ["dense", "hybrid"])
def test_evaluation_searches_embed_a_repeated_question_once_and_others_every_time(
    platform: Platform, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = platform.embedder
    assert isinstance(embedder, LocalEmbedder)
    counted = _counting(embedder, monkeypatch)
    questions = [item["QUESTION"] for _, item in pubmedqa_items(3)]
    first = platform.retriever_named(name, remember_queries=True).search_many(questions, k=5)  # each evaluation run
    again = platform.retriever_named(name, remember_queries=True).search_many(questions, k=5)
    assert counted.texts == questions
    assert [[h.chunk_id for h in hits] for hits in again] == [[h.chunk_id for h in hits] for hits in first]
    assert all(first)

    # A server's searches (many users) are not remembered: a fast answer would tell one user another's query.
    platform.retriever_named(name).search_many(questions, k=5)
    assert counted.texts == questions * 2


def test_the_evaluation_pipelines_retriever_remembers_its_questions(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sage_platform.dataflow.library.retrievers import HybridRetriever

    embedder = platform.embedder
    assert isinstance(embedder, LocalEmbedder)
    counted = _counting(embedder, monkeypatch)
    questions = [{"query": item["QUESTION"]} for _, item in pubmedqa_items(2)]
    for _ in range(2):  # two runs of the pipeline's retrieval step
        step = HybridRetriever({"platform": platform, "top_k": 5})
        step.open()
        assert all(record["retrieved"] for record in step.execute_batch(questions))
    assert counted.texts == [q["query"] for q in questions]
