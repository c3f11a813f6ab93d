"""Label answers (PubMedQA's yes / no / maybe): accuracy, and reading a label out of free text.

Usage::

    accuracy(["yes", "no"], ["yes", "maybe"])        # 0.5
    label_from_answer("Yes, screening helped.")      # "yes"
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PUBMEDQA_LABELS = ("yes", "no", "maybe")


def accuracy(predictions: Sequence[str | None], labels: Sequence[str]) -> float:
    """Share of predictions equal to their label (case and surrounding space ignored), 0–1."""
    if isinstance(predictions, str) or isinstance(labels, str):
        raise ValueError("predictions and labels must be sequences, not a single string")
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    for i, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"label {i} is {label!r}, not a non-empty string")
    for i, prediction in enumerate(predictions):
        if prediction is not None and not isinstance(prediction, str):
            raise ValueError(f"prediction {i} is {type(prediction).__name__}, not a string or None")
    if not labels:
        return 0.0
    hits = sum(
        1 for p, g in zip(predictions, labels, strict=True) if p is not None and p.strip().lower() == g.strip().lower()
    )
    return hits / len(labels)


def label_from_answer(answer: str, labels: Sequence[str] = PUBMEDQA_LABELS) -> str | None:
    """The first label word the answer says, or None when it says none."""
    pattern = re.compile(r"\b(" + "|".join(re.escape(label) for label in labels) + r")\b", re.IGNORECASE)
    match = pattern.search(answer)
    return match.group(1).lower() if match else None
