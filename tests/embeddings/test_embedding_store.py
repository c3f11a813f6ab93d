"""The content-addressed vector store on the real database: each distinct chunk text is embedded once
per model; unchanged texts are reused, unused vectors dropped, and another model's retired."""

from __future__ import annotations

import numpy as np
import pytest

from sage_platform.chunking import ChunkSplitter
from sage_platform.chunking.chunk_store import chunk_documents
from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.embeddings.embedding_store import count_missing, embed_missing_chunks, embed_shard
from sage_platform.embeddings.openai_api import OpenAIEmbedder
from sage_platform.ingest import ingest_corpus
from tests.openai_stub import openai_stub, stub_vector

SHARED = "Both documents say this very same sentence about renal function."


def _chunk(db: Database, settings: Settings, embedder: OpenAIEmbedder) -> None:
    ingest_corpus(db, settings.corpus_dir, max_document_bytes=settings.max_document_bytes)
    chunk_documents(db, ChunkSplitter(embedder.tokenizer, 2000, 0))


def _texts_sent(stub: object) -> list[str]:
    return [t for path, body in stub.requests if path.endswith("/embeddings") for t in body["input"]]  # type: ignore[attr-defined]


def test_each_distinct_text_is_embedded_once_then_reused_dropped_or_retired(settings: Settings, db: Database) -> None:
    corpus = settings.corpus_dir
    (corpus / "a.txt").write_text(SHARED)
    (corpus / "b.txt").write_text(SHARED)
    (corpus / "c.txt").write_text("A different note on hepatic enzymes.")
    with openai_stub() as stub:
        embedder = OpenAIEmbedder("stub-one", base_url=stub.url, api_key="k", batch_size=8)
        _ = embedder.dimension
        stub.requests.clear()
        _chunk(db, settings, embedder)
        first = embed_missing_chunks(db, embedder, texts_per_commit=1)
        assert (first.embedded, first.reused, first.chunks) == (2, 0, 3)
        assert sorted(_texts_sent(stub)) == sorted([SHARED, "A different note on hepatic enzymes."])
        with db.connect() as conn:
            stored = conn.execute(
                "SELECT c.text, e.embedding::real[] FROM (SELECT DISTINCT text_hash, text FROM chunks) c"
                " JOIN embeddings e USING (text_hash) WHERE e.model = 'stub-one'"
            ).fetchall()
        for text, vector in stored:
            expected = np.asarray(stub_vector(text), dtype=np.float32)
            assert np.allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)

        stub.requests.clear()
        again = embed_missing_chunks(db, embedder)
        assert (again.embedded, again.reused) == (0, 2) and _texts_sent(stub) == []

        (corpus / "c.txt").unlink()  # its text is no longer any chunk's: its vector goes
        (corpus / "d.txt").write_text("A new note on thyroid hormones.")
        _chunk(db, settings, embedder)
        edited = embed_missing_chunks(db, embedder)
        assert (edited.embedded, edited.reused, edited.orphans_dropped) == (1, 1, 1)
        assert _texts_sent(stub) == ["A new note on thyroid hormones."]

        other = OpenAIEmbedder("stub-two", base_url=stub.url, api_key="k")
        switched = embed_missing_chunks(db, other)
        assert (switched.embedded, switched.retired) == (2, 2)  # the old model's vectors, once all are covered
        with db.connect() as conn:
            models = conn.execute("SELECT model, count(*) FROM embeddings GROUP BY model").fetchall()
        assert models == [("stub-two", 2)]


def test_shards_split_the_missing_texts_disjointly_and_cover_them(settings: Settings, db: Database) -> None:
    texts = [f"Note {n} on a patient cohort of {n * 7} adults." for n in range(40)]
    for n, text in enumerate(texts):
        (settings.corpus_dir / f"{n}.txt").write_text(text)
    with openai_stub() as stub:
        embedder = OpenAIEmbedder("stub-one", base_url=stub.url, api_key="k", batch_size=8)
        _ = embedder.dimension  # its probe request, before the counted ones
        _chunk(db, settings, embedder)
        assert count_missing(db, "stub-one") == 40
        stub.requests.clear()
        sent = []
        for shard in range(3):
            stats = embed_shard(db, embedder, shard=shard, shards=3)
            sent.append(_texts_sent(stub))
            stub.requests.clear()
            assert stats.embedded == len(sent[-1]) > 0
        assert sorted(t for part in sent for t in part) == sorted(texts)  # each text in exactly one shard
        assert count_missing(db, "stub-one") == 0
        assert embed_shard(db, embedder, shard=1, shards=3).embedded == 0
        with pytest.raises(ValueError, match="shard 3 is not in 0..2"):
            embed_shard(db, embedder, shard=3, shards=3)
