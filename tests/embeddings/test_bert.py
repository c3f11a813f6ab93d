"""The packaged BERT model computed on torch alone gives sentence-transformers' vectors, and starts light."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sage_platform.embeddings._bert import BertEncoder
from sage_platform.embeddings.local import LocalEmbedder, SentenceTransformerEncoder
from tests._imports import heavy_modules_loaded

TEXTS = [
    "The patient was treated with antibiotics for pneumonia.",
    "",
    "短文本 and Ünïcödé — with a dash",
    "Thyroid hormone levels in a cohort of 120 adults. " * 3,
    "word " * 700,  # past the model's 256 tokens: truncated, as sentence-transformers truncates it
    "A",
]


@pytest.fixture(scope="module")
def reference() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(LocalEmbedder().model_dir), device="cpu")


def test_vectors_equal_sentence_transformers_in_input_order(reference: Any) -> None:
    encoder = BertEncoder.load(LocalEmbedder().model_dir)
    assert encoder is not None and (encoder.dimension, encoder.max_seq_length, encoder.pooling) == (
        384, 256, "mean_tokens"
    )  # fmt: skip
    expected = reference.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    for batch_size in (1, 2, 32):  # batches of mixed lengths: padding must change nothing
        ours = encoder.encode(TEXTS, batch_size=batch_size)
        assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
        assert np.abs(ours - expected).max() < 1e-5
        assert float(np.einsum("ij,ij->i", ours, expected).min()) > 0.99999


def test_the_embedder_uses_it_and_a_model_of_another_shape_goes_through_sentence_transformers(
    tmp_path: Path, reference: Any
) -> None:
    assert isinstance(LocalEmbedder().model, BertEncoder)
    other = tmp_path / "max-pooled"
    shutil.copytree(LocalEmbedder().model_dir, other)
    pooling = other / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    pooling.write_text(json.dumps(config))
    assert BertEncoder.load(other) is None
    embedder = LocalEmbedder(str(other))
    assert isinstance(embedder.model, SentenceTransformerEncoder)
    max_pooled = embedder.embed(TEXTS[:3])
    mean_pooled = reference.encode(TEXTS[:3], normalize_embeddings=True, convert_to_numpy=True)
    assert float(np.einsum("ij,ij->i", max_pooled, mean_pooled).max()) < 0.99  # its own pooling, not ours


def test_embedding_imports_neither_sentence_transformers_nor_transformers() -> None:
    code = "from sage_platform.embeddings.local import LocalEmbedder\nLocalEmbedder().embed(['What is Sage?'])"
    heavy = ("sentence_transformers", "transformers", "sklearn", "scipy")
    assert heavy_modules_loaded(code, heavy) == []
