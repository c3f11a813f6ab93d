"""The extractive answerer: with no LLM configured, answer with the retrieved sentences most
similar to the question, in their original order.

Usage::

    answerer = ExtractiveAnswerer(embedder, max_sentences=2)
    answers = answerer.answer_many(["What is Sage?"], [hits])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sage_platform.embeddings.base import Embedder
from sage_platform.generation.sentences import split_sentences
from sage_platform.retrieval.types import Hit


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(self, embedder: Embedder, *, max_sentences: int = 2, context_chunks: int = 3) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.context_chunks = context_chunks

    @property
    def label(self) -> str:
        return f"extractive (top {self.max_sentences} sentences by {self.embedder.model_name} similarity)"

    def answer_many(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[str]:
        candidates = [self._candidates(h) for h in hits]
        # One embedding call for every distinct sentence of every question: the batch is the speed.
        distinct = sorted({s for sentences in candidates for s in sentences})
        position = {sentence: i for i, sentence in enumerate(distinct)}
        sentence_vectors = self.embedder.embed(distinct) if distinct else np.zeros((0, 1), np.float32)
        question_vectors = self.embedder.embed(list(questions)) if questions else sentence_vectors[:0]
        answers = []
        for q_vector, sentences in zip(question_vectors, candidates, strict=True):
            if not sentences:
                answers.append("")
                continue
            scores = sentence_vectors[[position[s] for s in sentences]] @ q_vector
            best = sorted(np.argsort(-scores, kind="stable")[: self.max_sentences])
            answers.append(" ".join(sentences[i] for i in best))
        return answers

    def _candidates(self, hits: Sequence[Hit]) -> list[str]:
        seen: dict[str, None] = {}
        for hit in hits[: self.context_chunks]:
            for sentence in split_sentences(hit.text):
                seen.setdefault(sentence, None)
        return list(seen)
