"""The two embedders: the local model (offline) and any OpenAI-compatible endpoint (a loopback stub)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sage_platform.embeddings.local import LocalEmbedder
from sage_platform.embeddings.openai_api import OpenAIEmbedder
from tests.openai_stub import DIMENSION, openai_stub, stub_vector

TEXTS = [
    "The patient was treated with antibiotics for pneumonia.",
    "Antibiotic therapy cured the patient's lung infection.",
    "The stock market closed higher on Friday.",
    "短文本",
    "",
]


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder()


def test_local_vectors_are_unit_length_deterministic_and_independent_of_the_batch(local: LocalEmbedder) -> None:
    together = local.embed(TEXTS)
    assert together.shape == (len(TEXTS), local.dimension) == (5, 384) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    alone = np.stack([local.embed([text])[0] for text in TEXTS])
    assert np.allclose(together, alone, atol=1e-5)  # padding in a batch changes nothing
    assert np.array_equal(local.embed(TEXTS), together)
    assert local.embed([]).shape == (0, 384)


def test_local_similarity_follows_meaning(local: LocalEmbedder) -> None:
    pneumonia, paraphrase, stocks = local.embed(TEXTS[:3])
    assert float(pneumonia @ paraphrase) > 0.5 > float(pneumonia @ stocks)


def test_openai_embedder_batches_keeps_input_order_and_normalises() -> None:
    with openai_stub() as stub:
        embedder = OpenAIEmbedder("stub-model", base_url=stub.url, api_key="k", batch_size=2)
        vectors = embedder.embed(TEXTS)
        assert embedder.dimension == DIMENSION
        batches = [body["input"] for path, body in stub.requests if path.endswith("/embeddings")]
    assert batches[:3] == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:5]]  # then the dimension probe
    expected = np.asarray([stub_vector(t) for t in TEXTS], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected, atol=1e-6)  # the stub lists items in reverse: order comes from index
    assert all(body["model"] == "stub-model" for _, body in stub.requests)


@pytest.mark.parametrize("threads", [1, 2])
def test_model_calls_run_on_the_model_threads(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    embedder = LocalEmbedder(threads=threads)
    model = embedder.model
    seen: set[str] = set()
    original = model.encode

    def encode(*args: object, **kwargs: object) -> object:
        seen.add(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "encode", encode)
    with ThreadPoolExecutor(max_workers=6) as callers:  # six callers at once, as a pipeline's workers
        list(callers.map(lambda n: embedder.embed([f"text {n}"] * 40), range(12)))
    assert seen and all(name.startswith("sage-model") for name in seen)
    assert len(seen) <= threads
