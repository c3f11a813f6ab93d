"""Retrieval benchmark: dense, sparse and hybrid against bare pgvector and bare ranked full text.

100,000 chunks: real text from Debian's python3.11-doc and postgresql-doc-15 HTML (chunked by the
platform's own splitter), every one embedded with the local model (cached in bench/.cache), and the
top-up vectors drawn around those real ones. 1,000 queries: the first words of random real chunks.
Prints, and writes to bench/results/retrieval.json, for each method: p50/p99 latency of top-10,
recall@10 against exact kNN (dense), known-item nDCG@10 and recall@10 (every method: the relevant
chunks are the one the query was cut from and its top-up copies), and the HNSW build time against a
bare CREATE INDEX. Labelled-question quality (PubMedQA, the sample golden set) is bench/retrieval_quality.py.
Query embedding time is reported separately: latencies are for the search itself.

    .venv/bin/python bench/retrieval.py [--rows 100000] [--embedded 0] [--queries 1000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPORA = [Path("/usr/share/doc/python3.11/html"), Path("/usr/share/doc/postgresql-doc-15/html")]
MODEL = "bench/all-MiniLM-L6-v2"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def timed(fn: Callable[[int], Any], n: int) -> tuple[list[float], list[Any]]:
    latencies, results = [], []
    for i in range(n):
        began = time.perf_counter()
        results.append(fn(i))
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies, results


def summary(latencies: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(latencies), 3), "p99_ms": round(percentile(latencies, 99), 3)}


def recall(found: list[list[str]], exact: list[list[str]]) -> float:
    return sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True)) / sum(len(e) for e in exact)


def _real_vectors(embedder: object, texts: list[str], limit: int) -> tuple[np.ndarray, float]:
    """Embeddings of the real chunks, cached under bench/.cache by a hash of model and texts."""
    import hashlib

    texts = texts[:limit] if limit else texts
    digest = hashlib.sha256("\x00".join([MODEL, *texts]).encode()).hexdigest()[:16]
    cache = ROOT / "bench" / ".cache" / f"real-vectors-{digest}.npz"
    if cache.exists():
        saved = np.load(cache)
        return saved["vectors"], float(saved["seconds"])
    began = time.perf_counter()
    parts = []
    for start in range(0, len(texts), 2000):
        parts.append(embedder.embed(texts[start : start + 2000]))  # type: ignore[attr-defined]
        print(f"embedded {start + len(parts[-1])}/{len(texts)} real chunks", flush=True)
    vectors = np.concatenate(parts).astype(np.float32)
    seconds = time.perf_counter() - began
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vectors=vectors, seconds=seconds)
    return vectors, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--embedded", type=int, default=0, help="embed only this many real chunks (0: all)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.5, help="norm of the noise added to drawn vectors")
    args = parser.parse_args()

    from sage_platform.chunking import ChunkSplitter, chunk_id
    from sage_platform.config import Settings
    from sage_platform.db import Database, start_embedded_server, stop_embedded_server
    from sage_platform.embeddings.local import LocalEmbedder
    from sage_platform.index import IndexChecks, rebuild_pgvector_index
    from sage_platform.ingest import iter_corpus_files, read_document
    from sage_platform.retrieval import DenseRetriever, HybridRetriever, SparseRetriever

    rng = random.Random(1)
    embedder = LocalEmbedder()
    splitter = ChunkSplitter(embedder.tokenizer, 200, 32)
    documents: list[tuple[str, str]] = []
    for root in CORPORA:
        if not root.is_dir():
            print(f"missing {root}: apt-get install python3.11-doc postgresql-doc-15", file=sys.stderr)
            continue
        for rel, path in iter_corpus_files(root):
            if rel.endswith(".html") and path.is_file():
                documents.append((f"{root.parent.name}/{rel}", read_document(rel, path.read_bytes()).documents[0].text))
    chunks = [(doc_id, c.position, c.text) for (doc_id, _), pieces in
              zip(documents, splitter.split_many([t for _, t in documents]), strict=True) for c in pieces]  # fmt: skip
    real_rows = len(chunks)
    print(f"{len(documents)} pages, {real_rows} real chunks; topping up to {args.rows}", flush=True)

    # Vectors: every real chunk embedded with the model (cached on disk), the top-up drawn around them.
    real_vectors, embed_seconds = _real_vectors(embedder, [text for _, _, text in chunks], args.embedded)
    nprng = np.random.default_rng(1)
    dim = real_vectors.shape[1]
    rows: list[tuple[str, int, str]] = []
    vectors = np.empty((args.rows, dim), dtype=np.float32)
    for i in range(args.rows):
        doc_id, position, text = chunks[i % real_rows]
        if i >= real_rows:  # a top-up row: same text, its own identity, its own vector
            doc_id, text = f"{doc_id}#copy{i // real_rows}", f"{text} (copy {i // real_rows})"
        rows.append((doc_id, position, text))
    # A top-up vector is a real one plus Gaussian noise: near its source, on the real embeddings' manifold.
    count = len(real_vectors)
    vectors[: min(count, args.rows)] = real_vectors[: args.rows]
    if args.rows > count:
        base = real_vectors[np.arange(count, args.rows) % count]
        vectors[count:] = base + nprng.normal(0, args.noise / np.sqrt(dim), base.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    work = Path(tempfile.mkdtemp(prefix="sage-bench-retrieval-"))
    work.chmod(0o755)
    server = start_embedded_server(work / "pg")
    settings = Settings(database_url=server, data_dir=work)
    db = Database.from_settings(settings)
    from bench._corpus import load_chunks

    hashes = load_chunks(db, rows, vectors, MODEL)
    ids = [chunk_id(d, p, h) for (d, p, _), h in zip(rows, hashes, strict=True)]

    # Our build (table, HNSW, GIN, checks, swap) and a bare CREATE INDEX on the same vectors.
    ours = rebuild_pgvector_index(db, model=MODEL, dim=dim, checks=IndexChecks(sample_queries=200, min_recall=0.0))
    with db.connect() as conn:
        conn.execute(f"CREATE TABLE bare (id text PRIMARY KEY, embedding vector({dim}))")
        conn.execute("INSERT INTO bare SELECT chunk_id, embedding FROM chunk_index")
        conn.commit()
        conn.execute("SET maintenance_work_mem = '1GB'")
        began = time.perf_counter()
        conn.execute(
            "CREATE INDEX ON bare USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        conn.commit()
        bare_build = time.perf_counter() - began
        conn.execute("ANALYZE bare")
        conn.commit()
    print(f"HNSW build: ours {ours.hnsw_seconds:.1f}s, bare {bare_build:.1f}s", flush=True)
    with psycopg.connect(db.url, autocommit=True) as maintenance:  # no autovacuum in the middle of timings
        maintenance.execute("VACUUM ANALYZE")
        maintenance.execute("CHECKPOINT")

    # What the data-quality suites (blocking asset checks) cost at this size.
    from sage_platform.quality import chunks_quality, documents_quality, embeddings_quality, index_quality

    quality_seconds = {}
    for name, suite in (
        ("documents", lambda: documents_quality(db, settings)),
        ("chunks", lambda: chunks_quality(db, settings)),
        ("embeddings", lambda: embeddings_quality(db, model=MODEL, dim=dim)),
        ("index", lambda: index_quality(db)),
    ):
        began = time.perf_counter()
        suite()
        quality_seconds[name] = round(time.perf_counter() - began, 2)
    print(f"quality suites: {quality_seconds}", flush=True)

    # Queries: the first words of random real chunks.
    picks = [rng.randrange(real_rows) for _ in range(args.queries)]
    texts = [" ".join(chunks[i][2].split()[:8]) for i in picks]
    began = time.perf_counter()
    query_vectors = embedder.embed(texts)
    query_embed_ms = (time.perf_counter() - began) * 1000 / len(texts)
    exact_order = np.argsort(-(query_vectors @ vectors.T), axis=1)[:, :10]
    exact = [[ids[j] for j in row] for row in exact_order]
    known = [[ids[j] for j in range(pick, args.rows, real_rows)] for pick in picks]  # the source and its copies

    def known_item(found: list[list[str]]) -> dict[str, float]:
        from sage_platform.evaluation.retrieval_metrics import ndcg_at_k, recall_at_k

        return {"known_item_ndcg@10": round(ndcg_at_k(found, known, 10), 4),
                "known_item_recall@10": round(recall_at_k(found, known, 10), 4)}  # fmt: skip

    results: dict[str, object] = {
        "rows": args.rows, "real_chunks": real_rows, "embedded_real_chunks": len(real_vectors),
        "embedding_s_for_real_chunks": round(embed_seconds, 1), "query_embedding_ms_each": round(query_embed_ms, 2),
        "hnsw_build_s_ours": round(ours.hnsw_seconds, 2), "hnsw_build_s_bare": round(bare_build, 2),
        "hnsw_build_ratio_ours_over_bare": round(ours.hnsw_seconds / bare_build, 3),
        "quality_suite_seconds": quality_seconds,
        "index_total_build_s_ours": round(ours.total_seconds, 2), "index_check_recall@10": ours.checks.get("recall@10"),
    }  # fmt: skip
    from pgvector.psycopg import register_vector

    bare_conn = psycopg.connect(db.url, autocommit=True)
    register_vector(bare_conn)
    for ef in (40, 100, 150):
        bare_conn.execute(f"SET hnsw.ef_search = {ef}")
        lat, found = timed(
            lambda i: [r[0] for r in bare_conn.execute(
                "SELECT id FROM bare ORDER BY embedding <=> %s LIMIT 10", (query_vectors[i],))],
            args.queries,
        )  # fmt: skip
        results[f"bare_pgvector_ef{ef}"] = {
            **summary(lat),
            "recall@10": round(recall(found, exact), 4),  # type: ignore[arg-type]
            **known_item(found),
        }  # type: ignore[arg-type]
        dense = DenseRetriever(db, embedder, ef_search=ef)
        dense.search_vector(query_vectors[0], 10)  # warm the pool
        lat, hits = timed(lambda i, dense=dense: dense.search_vector(query_vectors[i], 10), args.queries)  # type: ignore[misc]
        found = [[h.chunk_id for h in hs] for hs in hits]  # type: ignore[attr-defined]
        results[f"dense_ef{ef}"] = {**summary(lat), "recall@10": round(recall(found, exact), 4), **known_item(found)}
    # Bare ranked full text, as PostgreSQL's documentation shows it: every word required, ts_rank.
    bare_full_text = ("SELECT chunk_id FROM chunk_index, websearch_to_tsquery('english', %s) q WHERE tsv @@ q"
                      " ORDER BY ts_rank(tsv, q) DESC LIMIT 10")  # fmt: skip
    failures: list[int] = []

    def bare_search(i: int) -> list[str]:
        """PostgreSQL refuses ts_rank on some parsed queries ("tsquery stack too small"): counted, no hits."""
        try:
            return [r[0] for r in bare_conn.execute(bare_full_text, (texts[i],))]
        except psycopg.errors.InternalError_:
            failures.append(i)
            return []

    for name in ("bare_ranked_full_text",):
        lat, rows_found = timed(bare_search, args.queries)
        results["bare_ranked_full_text_refused_queries"] = len(failures)
        results[name] = {**summary(lat), **known_item(rows_found)}  # type: ignore[arg-type]
    sparse = SparseRetriever(db, max_candidates=settings.sparse_max_candidates)
    sparse.search(texts[0], 10)  # warm

    def sparse_search(i: int) -> Any:
        try:
            return sparse.search(texts[i], 10)
        except psycopg.Error:
            print(f"sparse search failed on query {i}: {texts[i]!r}", flush=True)
            raise

    lat, hits = timed(sparse_search, args.queries)
    results["sparse"] = {**summary(lat), **known_item([[h.chunk_id for h in hs] for hs in hits])}  # type: ignore[attr-defined]
    for fusion in ("convex", "rrf"):
        hybrid = HybridRetriever(
            db, embedder, dense_depth=settings.hybrid_dense_depth, sparse_depth=settings.hybrid_sparse_depth,
            max_candidates=settings.sparse_max_candidates, ef_search=settings.hnsw_ef_search, fusion=fusion,
            dense_weight=settings.hybrid_dense_weight,
        )  # fmt: skip
        hybrid.search_with_vector(texts[0], query_vectors[0], 10)  # warm
        lat, hits = timed(lambda i, h=hybrid: h.search_with_vector(texts[i], query_vectors[i], 10), args.queries)  # type: ignore[misc]
        found = [[h.chunk_id for h in hs] for hs in hits]  # type: ignore[attr-defined]
        results["hybrid" if fusion == "convex" else "hybrid_rrf"] = {**summary(lat), **known_item(found)}
    lat, _ = timed(lambda i: hybrid.search(texts[i], 10), min(args.queries, 200))
    results["hybrid_with_query_embedding"] = summary(lat)
    bare_conn.close()

    from bench._results import save_results

    save_results("retrieval", results)
    db.pool.close()
    stop_embedded_server(work / "pg")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
