import random

import pytest

from sage_platform.chunking import CharacterTokenizer, ChunkSplitter
from sage_platform.embeddings.local import LocalEmbedder

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return LocalEmbedder().tokenizer  # the real embedder's tokenizer, no model load


def _document(paragraphs: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 90))) + "." for _ in range(paragraphs)]


def test_chunks_are_exact_slices_within_the_token_budget(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "\n\n".join(_document(60))
    splitter = ChunkSplitter(tokenizer, size=120, overlap=16)
    chunks = splitter.split(text)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.token_count <= 120
        assert len(tokenizer.spans([chunk.text])[0]) <= 120 + 2  # re-tokenizing a slice may shift a piece
    # Every character of the document is in some chunk, and consecutive chunks overlap.
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.end


def test_a_paragraph_longer_than_a_chunk_is_windowed(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(["word"] * 1000)
    chunks = ChunkSplitter(tokenizer, size=100, overlap=10).split(text)
    assert all(c.token_count <= 100 for c in chunks)
    assert sum(c.token_count for c in chunks) - 10 * (len(chunks) - 1) == 1000


def test_editing_one_paragraph_changes_only_nearby_chunks(tokenizer) -> None:  # type: ignore[no-untyped-def]
    paragraphs = _document(200)
    splitter = ChunkSplitter(tokenizer, size=200, overlap=32)
    before = [c.text for c in splitter.split("\n\n".join(paragraphs))]
    edited = list(paragraphs)
    edited[50] = edited[50] + " An added sentence that makes this paragraph longer than it was."
    after = [c.text for c in splitter.split("\n\n".join(edited))]
    changed = set(after) - set(before)
    assert 1 <= len(changed) <= 3, f"{len(changed)} of {len(after)} chunks changed"


def test_character_tokenizer_counts_characters() -> None:
    splitter = ChunkSplitter(CharacterTokenizer(), size=100, overlap=10)
    chunks = splitter.split("\n\n".join(["x" * 60] * 10))
    assert all(len(c.text) <= 100 for c in chunks)
    assert splitter.fingerprint == "cdc1:chars:100:10"


def test_empty_text_has_no_chunks(tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert ChunkSplitter(tokenizer, 100, 10).split("  \n\n ") == []


def test_overlap_must_be_below_half_the_size(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="twice the overlap"):
        ChunkSplitter(tokenizer, size=100, overlap=50)
