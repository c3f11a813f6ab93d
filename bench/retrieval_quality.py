"""Retrieval quality: dense, sparse and hybrid nDCG@10, recall@10 and MRR@10 on labelled questions.

Sets, each indexed through the platform's own pipeline (ingest, chunk, embed with the local model,
pgvector index) in its own database:
- PubMedQA (``../shared/data/pubmedqa/pqal_dev.json``): all 500 abstracts are the corpus; the 500
  questions are split by a seeded shuffle into a tuning half and a held-out half. Hybrid fusion
  (method, dense weight, candidate depths) is chosen on the tuning half only, then every method is
  scored on the held-out half, which the choice never saw.
- The platform's sample corpus and its golden set (30 questions about Sage's own docs): another
  domain, also unseen by the tuning.

A question's relevant documents are its labelled ones; a ranking is the retriever's chunk hits
(k=30) reduced to distinct documents, in order. Writes bench/results/retrieval_quality.json.

    .venv/bin/python bench/retrieval_quality.py [--pubmedqa PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa" / "pqal_dev.json"
CHUNK_HITS = 30
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
BUDGETS = (100, 200, 500, 1000)  # sparse max_candidates: BM25-scored chunks per query
DEPTHS = (20, 50, 100)

Search = Callable[[str, np.ndarray], list[str]]


def documents(hits: Sequence[Any]) -> list[str]:
    """Chunk hits to distinct document ids, best first (as the evaluation ranks them)."""
    from sage_platform.retrieval.types import ranked_doc_ids

    return ranked_doc_ids(hits, 10)


def scores(search: Search, questions: list[tuple[str, list[str], np.ndarray]]) -> dict[str, float]:
    from sage_platform.evaluation.retrieval_metrics import mrr_at_k, ndcg_at_k, recall_at_k

    began = time.perf_counter()
    ranked = [search(text, vector) for text, _, vector in questions]
    seconds = time.perf_counter() - began
    relevant = [gold for _, gold, _ in questions]
    return {
        "ndcg@10": round(ndcg_at_k(ranked, relevant, 10), 4),
        "recall@10": round(recall_at_k(ranked, relevant, 10), 4),
        "mrr@10": round(mrr_at_k(ranked, relevant, 10), 4),
        "queries": len(questions),
        "ms_per_query": round(seconds * 1000 / len(questions), 2),
    }


def index_corpus(server: str, work: Path, name: str, corpus: Path) -> Any:
    from sage_platform.config import Settings
    from sage_platform.db.urls import with_database
    from sage_platform.pipeline import build_indexes
    from sage_platform.platform import Platform

    with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    settings = Settings(database_url=with_database(server, name), data_dir=work / name, corpus_dir=corpus)
    platform = Platform(settings)
    began = time.perf_counter()
    stats = build_indexes(platform)
    print(f"{name}: {stats.chunks.chunks_total} chunks indexed in {time.perf_counter() - began:.0f}s", flush=True)
    return platform


def searches(platform: Any) -> dict[str, Search]:
    """Every method under test, each given the question's text and its (precomputed) vector."""
    from sage_platform.retrieval import DenseRetriever, HybridRetriever, SparseRetriever

    dense = DenseRetriever(platform.db, platform.embedder)
    sparse = SparseRetriever(platform.db)
    default = platform.retriever_named("hybrid")  # the platform's defaults (Settings)
    methods: dict[str, Search] = {
        "dense": lambda text, vector: documents(dense.search_vector(vector, CHUNK_HITS)),
        "sparse": lambda text, vector: documents(sparse.search(text, CHUNK_HITS)),
        "hybrid (defaults)": lambda text, vector: documents(default.search_with_vector(text, vector, CHUNK_HITS)),
    }
    for budget in BUDGETS:
        capped = SparseRetriever(platform.db, max_candidates=budget)
        methods[f"sparse max_candidates={budget}"] = lambda t, v, r=capped: documents(r.search(t, CHUNK_HITS))
    for depth in DEPTHS:
        rrf = HybridRetriever(platform.db, platform.embedder, dense_depth=depth, sparse_depth=depth, fusion="rrf")
        methods[f"hybrid rrf depth={depth}"] = lambda t, v, r=rrf: documents(r.search_with_vector(t, v, CHUNK_HITS))
        for weight in WEIGHTS:
            convex = HybridRetriever(
                platform.db, platform.embedder, dense_depth=depth, sparse_depth=depth, dense_weight=weight
            )
            methods[f"hybrid convex w={weight} depth={depth}"] = lambda t, v, r=convex: documents(
                r.search_with_vector(t, v, CHUNK_HITS)
            )
    return methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pubmedqa", type=Path, default=PUBMEDQA)
    args = parser.parse_args()

    from sage_platform.datasets.pubmedqa import import_pubmedqa
    from sage_platform.db import start_embedded_server, stop_embedded_server
    from sage_platform.evaluation.golden import load_golden_set
    from sage_platform.package_files import SAMPLE_CORPUS_DIR, SAMPLE_EVAL_SET

    work = Path(tempfile.mkdtemp(prefix="sage-bench-quality-"))
    work.chmod(0o755)
    server = start_embedded_server(work / "pg")
    try:
        imported = import_pubmedqa(args.pubmedqa, work / "pubmedqa")
        pubmed = index_corpus(server, work, "pubmedqa", imported.corpus.parent)
        sample = index_corpus(server, work, "sample", SAMPLE_CORPUS_DIR)

        def labelled(platform: Any, path: Path) -> list[tuple[str, list[str], np.ndarray]]:
            golden = load_golden_set(path)
            vectors = platform.embedder.embed([q.question for q in golden])
            return [(q.question, list(q.relevant_doc_ids), v) for q, v in zip(golden, vectors, strict=True)]

        questions = labelled(pubmed, imported.golden)
        random.Random(14).shuffle(questions)
        tuning, held_out = questions[: len(questions) // 2], questions[len(questions) // 2 :]
        sample_questions = labelled(sample, SAMPLE_EVAL_SET)

        pubmed_methods, sample_methods = searches(pubmed), searches(sample)
        for method in itertools.islice(pubmed_methods.values(), 3):  # warm the pools and the caches
            method(*tuning[0][::2])
        tuned = {name: scores(search, tuning) for name, search in pubmed_methods.items()}
        hybrids = {name: s for name, s in tuned.items() if name.startswith("hybrid ") and "defaults" not in name}
        budgets = {name: s for name, s in tuned.items() if name.startswith("sparse max")}
        chosen = max(hybrids, key=lambda name: (hybrids[name]["ndcg@10"], hybrids[name]["mrr@10"]))
        print(f"chosen on the tuning half: {chosen} {hybrids[chosen]}", flush=True)
        reported = ["dense", "sparse", "hybrid (defaults)", chosen, "hybrid rrf depth=50", *budgets]
        results = {
            "pubmedqa": {"abstracts": 500, "tuning_questions": len(tuning), "held_out_questions": len(held_out)},
            "tuning_half": tuned,
            "chosen_hybrid": chosen,
            "held_out_half": {name: scores(pubmed_methods[name], held_out) for name in dict.fromkeys(reported)},
            "sample_golden_set": {
                name: scores(sample_methods[name], sample_questions) for name in dict.fromkeys(reported)
            },
        }
    finally:
        stop_embedded_server(work / "pg")
        shutil.rmtree(work, ignore_errors=True)
    from bench._results import save_results

    save_results("retrieval_quality", results, show=False)
    print(json.dumps({k: v for k, v in results.items() if k != "tuning_half"}, indent=2))


if __name__ == "__main__":
    main()
