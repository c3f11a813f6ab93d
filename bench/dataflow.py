"""Dataflow benchmark: the quickstart pipeline against a hand-written loop doing the same calls, and Ray.

Corpus and questions: the 500 PubMedQA items in ../shared/data/pubmedqa (abstracts indexed on an
embedded PostgreSQL in a temporary folder). Both sides, in one run, warmed up, alternating 5 times (medians):
- dataflow: FileSource → DenseRetriever (top 5) → QAPromptor (the quickstart's template) →
  ExtractiveGenerator → a collecting sink, on LocalEnvironment, batch size 32 on both batching steps;
- hand loop: the same calls on the same batches of 32 (retriever.search_many, template.format, token
  counts, ExtractiveAnswerer.answer_many), no framework.
Then the same pipeline on RemoteEnvironment (a local Ray cluster, 2 CPUs, 2 actors on each batching
step), and on LocalEnvironment with the same 2 workers per step (with one model thread, then two:
SAGE_EMBEDDING_THREADS=2), including Ray's actor start and
model loads (each actor process loads the model). Quality beside speed: recall@5 of each question's
own abstract, and whether the answers are identical across sides.

    .venv/bin/python bench/dataflow.py [--questions 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa" / "pqal_dev.json"
TEMPLATE = "Answer from the context: {context}\nQ: {query}\nA:"
BATCH = 32
TOP_K = 5


def build(work: Path, count: int) -> tuple[Any, list[tuple[str, str]]]:
    from sage_platform.config import Settings
    from sage_platform.pipeline import build_indexes
    from sage_platform.platform import Platform

    items = list(json.loads(PUBMEDQA.read_text()).items())[:count]
    corpus = work / "corpus"
    corpus.mkdir()
    with (corpus / "pubmedqa.jsonl").open("w") as out:
        for pmid, item in items:
            out.write(json.dumps({"id": pmid, "text": "\n\n".join(item["CONTEXTS"])}) + "\n")
    os.environ.update({"SAGE_DATA_DIR": str(work / "data"), "SAGE_CORPUS_DIR": str(corpus), "HF_HUB_OFFLINE": "1"})
    platform = Platform(Settings())
    build_indexes(platform)
    return platform, [(pmid, item["QUESTION"]) for pmid, item in items]


def pipeline_run(env: Any, path: Path, parallelism: int = 1) -> tuple[float, list[Any]]:
    from sage_platform.dataflow import DenseRetriever, ExtractiveGenerator, FileSource, QAPromptor

    (env.from_source(FileSource, {"file_path": str(path)})
        .map(DenseRetriever, {"top_k": TOP_K}, batch_size=BATCH, batch_wait=1.0, parallelism=parallelism)
        .map(QAPromptor, {"template": TEMPLATE})
        .map(ExtractiveGenerator, batch_size=BATCH, batch_wait=1.0, parallelism=parallelism))  # fmt: skip
    began = time.perf_counter()
    result = env.submit()
    seconds = time.perf_counter() - began
    return seconds, [(r["query"], [h["doc_id"] for h in r["retrieved"]], r["answer"]) for r in result.outputs]


def hand_loop(platform: Any, questions: list[str]) -> tuple[float, list[Any]]:
    from sage_platform.generation.extractive import ExtractiveAnswerer
    from sage_platform.tokenization import TokenCounter

    retriever = platform.retriever_named("dense")
    answerer = ExtractiveAnswerer(platform.embedder)
    counter = TokenCounter.local()
    began = time.perf_counter()
    out = []
    for start in range(0, len(questions), BATCH):
        batch = questions[start : start + BATCH]
        hits = retriever.search_many(batch, k=TOP_K)
        prompts = []
        for query, found in zip(batch, hits, strict=True):
            passages = [h.text for h in found]
            prompts.append((TEMPLATE.format(context="\n\n".join(passages), query=query),
                            sum(counter.count(p) for p in passages)))  # fmt: skip
        answers = answerer.answer_many(batch, hits)
        for query, found, answer in zip(batch, hits, answers, strict=True):
            used = sum(counter.count(h.text) for h in found[:3])
            usage = (counter.count(query) + used, counter.count(answer))
            out.append((query, [h.doc_id for h in found], answer, usage))
    seconds = time.perf_counter() - began
    return seconds, [row[:3] for row in out]


def recall_at_5(rows: list[Any], own: dict[str, str]) -> float:
    return sum(own[q] in docs[:5] for q, docs, _ in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from bench._results import save_results
    from sage_platform.dataflow import LocalEnvironment, RemoteEnvironment
    from sage_platform.db import stop_embedded_server

    work = Path(tempfile.mkdtemp(prefix="sage-bench-dataflow-"))
    platform, items = build(work, args.questions)
    own = {question: pmid for pmid, question in items}
    questions = [question for _, question in items]
    path = work / "questions.txt"
    path.write_text("\n".join(questions) + "\n")
    warm = work / "warm.txt"
    warm.write_text("\n".join(questions[:64]) + "\n")
    pipeline_run(LocalEnvironment("warm"), warm)
    hand_loop(platform, questions[:64])

    local_s, hand_s = [], []
    for _ in range(args.repeats):
        seconds, local_rows = pipeline_run(LocalEnvironment("rag_pipeline"), path)
        local_s.append(seconds)
        seconds, hand_rows = hand_loop(platform, questions)
        hand_s.append(seconds)
    local2_s, local2_rows = pipeline_run(LocalEnvironment("rag_pipeline"), path, parallelism=2)
    os.environ["SAGE_EMBEDDING_THREADS"] = "2"  # two forward passes at once (a new shared platform)
    local2t_s, local2t_rows = pipeline_run(LocalEnvironment("rag_pipeline"), path, parallelism=2)
    del os.environ["SAGE_EMBEDDING_THREADS"]
    ray_s, ray_rows = pipeline_run(RemoteEnvironment("rag_pipeline", {"num_cpus": 2}), path, parallelism=2)
    ray_again_s, _ = pipeline_run(RemoteEnvironment("rag_pipeline", {"num_cpus": 2}), path, parallelism=2)

    local, hand = statistics.median(local_s), statistics.median(hand_s)
    results = {
        "questions": len(questions), "batch_size": BATCH, "top_k": TOP_K,
        "work_each_side": f"{len(questions)} questions: retrieve top {TOP_K}, build the prompt, extractive answer",
        "hand_loop_s": round(hand, 3), "dataflow_local_s": round(local, 3),
        "local_overhead": round(local / hand - 1, 4), "runs_s": {"dataflow": local_s, "hand": hand_s},
        "questions_per_s": {"hand": round(len(questions) / hand, 1), "local": round(len(questions) / local, 1)},
        "local_2_workers_s": round(local2_s, 3), "local_2_workers_2_model_threads_s": round(local2t_s, 3), "ray_2_workers_s": round(ray_s, 3), "ray_2_workers_again_s": round(ray_again_s, 3),
        "recall@5": {"hand": recall_at_5(hand_rows, own), "local": recall_at_5(local_rows, own),
                     "ray": recall_at_5(ray_rows, own)},
        "identical_answers": {"local_vs_hand": sorted(local_rows) == sorted(hand_rows),
                              "ray_vs_local": sorted(ray_rows) == sorted(local_rows),
                              "local_2_vs_local": sorted(local2_rows) == sorted(local_rows),
                              "local_2_threads_vs_local": sorted(local2t_rows) == sorted(local_rows)},
    }  # fmt: skip
    save_results("dataflow", results)
    platform.db.close()
    stop_embedded_server(work / "data" / "pg")


if __name__ == "__main__":
    main()
