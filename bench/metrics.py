"""Metrics benchmark: our metric functions against the reference implementations, same inputs.

10,000 prediction/reference pairs recombined from PubMedQA text (../shared/data/pubmedqa), no text
repeated: predictions are context sentences, shuffled answers or answers with a sentence added;
references are answers with a context sentence added; every fifth sample gets a second reference.
Each metric: one warm-up run of each side, then three timed runs alternating which side goes first,
our caches cleared before each. Prints the median times, their ratio (reference time / our time:
above 1 means ours is faster), and checks the values agree to 1e-9.

    .venv/bin/python bench/metrics.py [--pairs 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import string
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa" / "pqal_dev.json"
ROUNDS = 3


def squad_normalize(s: str) -> str:
    """The SQuAD v1.1 official evaluation script's normalize_answer."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_f1(prediction: str, truth: str) -> float:
    p, g = squad_normalize(prediction).split(), squad_normalize(truth).split()
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def pairs(count: int) -> tuple[list[str], list[list[str]]]:
    """``count`` pairs in which no prediction and no reference text repeats: a real evaluation scores
    distinct texts, so no text-level cache may help one side (word-level caches still may, as in real use)."""
    items = list(json.loads(PUBMEDQA.read_text()).values())
    sentences = [s for item in items for s in item["CONTEXTS"]]
    rng = random.Random(0)
    predictions: list[str] = []
    references: list[list[str]] = []
    seen: set[str] = set()

    def fresh(make) -> str:  # type: ignore[no-untyped-def]
        while True:
            text = make()
            if text not in seen:
                seen.add(text)
                return str(text)

    for i in range(count):
        item = items[i % len(items)]
        answer = item["LONG_ANSWER"]
        # The reference: the item's answer followed by one of its context sentences, chosen so it is new.
        reference = fresh(lambda item=item, answer=answer: f"{answer} {rng.choice(sentences)}")
        kind = i % 4
        if kind == 0:  # two context sentences
            prediction = fresh(lambda item=item: f"{rng.choice(item['CONTEXTS'])} {rng.choice(sentences)}")
        elif kind == 1:  # the answer's words shuffled
            words = answer.split()
            prediction = fresh(lambda words=words: " ".join(rng.sample(words, len(words))))
        elif kind == 2:  # another item's sentences
            prediction = fresh(lambda: f"{rng.choice(sentences)} {rng.choice(sentences)}")
        else:  # the answer with one sentence of context: close to the reference, not equal
            prediction = fresh(lambda answer=answer: f"{answer} {rng.choice(sentences)}")
        second = fresh(lambda: f"{items[rng.randrange(len(items))]['LONG_ANSWER']} {rng.choice(sentences)}")
        predictions.append(prediction)
        references.append([reference, second] if i % 5 == 0 else [reference])
    return predictions, references


def clock(fn):  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()
    import sacrebleu
    from rouge_score import rouge_scorer

    from sage_platform.evaluation import text_metrics as tm

    predictions, references = pairs(args.pairs)
    width = max(len(r) for r in references)
    streams = [[r[i] if i < len(r) else None for r in references] for i in range(width)]
    rows = []

    def compare(name: str, ours_fn, reference_fn) -> None:  # type: ignore[no-untyped-def]
        """One warm-up of each side, then ROUNDS timed runs alternating which side goes first; medians."""
        ours_fn(), reference_fn()
        ours_times, reference_times = [], []
        for round_ in range(ROUNDS):
            sides = [("ours", ours_fn), ("reference", reference_fn)]
            for side, fn in sides if round_ % 2 == 0 else sides[::-1]:
                tm._scorer.cache_clear()  # our caches start cold every run, as in a fresh evaluation
                value, seconds = clock(fn)
                (ours_times if side == "ours" else reference_times).append(seconds)
                if side == "ours":
                    ours_value = value
                else:
                    reference_value = value
        for key in ours_value if isinstance(ours_value, dict) else [None]:
            a = ours_value[key] if key else ours_value
            b = reference_value[key] if key else reference_value
            assert abs(a - b) < 1e-9, (name, key, a, b)
        rows.append((name, statistics.median(ours_times), statistics.median(reference_times)))

    compare(
        "bleu",
        lambda: tm.corpus_bleu(predictions, references),
        lambda: sacrebleu.corpus_bleu(predictions, streams).score,
    )

    def reference_rouge() -> dict[str, float]:
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
        scores = [scorer.score_multi(r, p) for p, r in zip(predictions, references, strict=True)]
        return {k: sum(s[k].fmeasure for s in scores) / len(scores) for k in ("rouge1", "rouge2", "rougeL")}

    def our_rouge() -> dict[str, float]:
        return tm.rouge(predictions, references)

    compare("rouge (1, 2, L)", our_rouge, reference_rouge)
    compare(
        "exact_match",
        lambda: tm.exact_match(predictions, references),
        lambda: 100 * sum(max(float(squad_normalize(p) == squad_normalize(t)) for t in r)
                          for p, r in zip(predictions, references, strict=True)) / len(predictions),
    )  # fmt: skip
    compare(
        "f1",
        lambda: tm.token_f1(predictions, references),
        lambda: (
            100
            * sum(max(squad_f1(p, t) for t in r) for p, r in zip(predictions, references, strict=True))
            / len(predictions)
        ),
    )
    total_ours = sum(r[1] for r in rows)
    total_reference = sum(r[2] for r in rows)
    rows.append(("all", total_ours, total_reference))
    texts = len(set(predictions)) + len({r for refs in references for r in refs})
    print(f"{args.pairs} pairs from PubMedQA, {texts} distinct texts; ratio = reference / ours (goal >= 1.0)")
    print(f"{'metric':<16} {'ours s':>8} {'reference s':>12} {'ratio':>7}")
    results = {}
    for name, ours, reference in rows:
        print(f"{name:<16} {ours:8.3f} {reference:12.3f} {reference / ours:7.2f}")
        results[name] = {
            "ours_s": round(ours, 3),
            "reference_s": round(reference, 3),
            "ratio": round(reference / ours, 2),
        }
    from bench._results import save_results

    save_results("metrics", {"pairs": args.pairs, "distinct_texts": texts, "rounds": ROUNDS, "metrics": results},
                 show=False)  # fmt: skip


if __name__ == "__main__":
    main()
