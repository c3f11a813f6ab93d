"""Index at scale: vector, halfvec, binary-quantized (re-ranked) and partitioned HNSW on the same vectors.

The vectors are the real embeddings of ``bench/retrieval.py``'s corpus (its cache, bench/.cache; run that
benchmark once first) topped up to ``--rows`` by vectors drawn around them, as it does. Every variant
indexes the same table's rows, built one after the other in one embedded PostgreSQL, and answers the
same queries (real vectors with a little noise, so none is its own nearest neighbour):

- ``vector``: HNSW on ``vector(384)`` (what the platform builds today);
- ``halfvec``: HNSW on the ``halfvec(384)`` cast of the same column (half the index);
- ``binary``: HNSW on ``binary_quantize(embedding)::bit(384)`` (Hamming), ``--rerank`` × 10 candidates
  re-ranked by the full vector;
- ``partitioned``: the table hash-partitioned by document (``--partitions``), one HNSW per partition.

For each: build seconds, index bytes, the build backend's peak RSS, and for each ``ef_search``, p50/p99
latency of top-10 and recall@10 against exact search (NumPy, all rows).

    .venv/bin/python bench/scale.py [--rows 1000000] [--queries 200] [--ef 40,100,200] [--variants …]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HNSW = "WITH (m = 16, ef_construction = 64)"
VARIANTS = ("vector", "halfvec", "binary", "partitioned")


def real_vectors() -> np.ndarray:
    caches = sorted((ROOT / "bench" / ".cache").glob("real-vectors-*.npz"), key=lambda p: p.stat().st_size)
    if not caches:
        sys.exit("no real embeddings cached: run .venv/bin/python bench/retrieval.py once first")
    return np.asarray(np.load(caches[-1])["vectors"], dtype=np.float32)


def topped_up(real: np.ndarray, rows: int, noise: float, seed: int = 1) -> np.ndarray:
    """``rows`` unit vectors: the real ones, then each again plus Gaussian noise (bench/retrieval.py's way)."""
    rng = np.random.default_rng(seed)
    dim = real.shape[1]
    out = np.empty((rows, dim), dtype=np.float32)
    out[: min(rows, len(real))] = real[:rows]
    for start in range(len(real), rows, 100_000):
        end = min(rows, start + 100_000)
        base = real[np.arange(start, end) % len(real)]
        out[start:end] = base + rng.normal(0, noise / np.sqrt(dim), base.shape).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def load(conn: psycopg.Connection, vectors: np.ndarray, partitions: int) -> None:
    dim = vectors.shape[1]
    conn.execute(f"CREATE TABLE items (id integer PRIMARY KEY, doc_hash integer NOT NULL, embedding vector({dim}))")
    conn.execute(
        f"CREATE TABLE items_by_doc (id integer, doc_hash integer NOT NULL, embedding vector({dim})) "
        "PARTITION BY HASH (doc_hash)"
    )
    for p in range(partitions):
        conn.execute(
            f"CREATE TABLE items_by_doc_{p} PARTITION OF items_by_doc FOR VALUES WITH (MODULUS {partitions}, "
            f"REMAINDER {p})"
        )
    with conn.cursor().copy("COPY items (id, doc_hash, embedding) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "int4", "vector"])
        for i, vector in enumerate(vectors):
            copy.write_row((i, i // 8, vector))  # eight chunks a document
    conn.execute("INSERT INTO items_by_doc SELECT * FROM items")
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE items")
    conn.execute("VACUUM ANALYZE items_by_doc")


def build(conn: psycopg.Connection, variant: str, dim: int, partitions: int) -> list[str]:
    """Creates the variant's index(es); returns their names."""
    if variant == "vector":
        conn.execute(f"CREATE INDEX items_vector ON items USING hnsw (embedding vector_cosine_ops) {HNSW}")
        return ["items_vector"]
    if variant == "halfvec":
        conn.execute(
            f"CREATE INDEX items_halfvec ON items USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) {HNSW}"
        )
        return ["items_halfvec"]
    if variant == "binary":
        conn.execute(
            f"CREATE INDEX items_binary ON items USING hnsw ((binary_quantize(embedding)::bit({dim})) bit_hamming_ops) "
            f"{HNSW}"
        )
        return ["items_binary"]
    conn.execute(f"CREATE INDEX items_by_doc_vector ON items_by_doc USING hnsw (embedding vector_cosine_ops) {HNSW}")
    return [f"items_by_doc_{p}_embedding_idx" for p in range(partitions)]


def query_sql(variant: str, dim: int, rerank: int) -> sql.Composed:
    if variant == "vector":
        text = "SELECT id FROM items ORDER BY embedding <=> %(q)s LIMIT 10"
    elif variant == "halfvec":
        text = "SELECT id FROM items ORDER BY embedding::halfvec({dim}) <=> %(q)s::halfvec({dim}) LIMIT 10"
    elif variant == "binary":
        text = (
            "SELECT id FROM (SELECT id, embedding FROM items ORDER BY binary_quantize(embedding)::bit({dim}) <~> "
            "binary_quantize(%(q)s)::bit({dim}) LIMIT {candidates}) AS candidates ORDER BY embedding <=> %(q)s LIMIT 10"
        )
    else:
        text = "SELECT id FROM items_by_doc ORDER BY embedding <=> %(q)s LIMIT 10"
    return sql.SQL(text).format(dim=sql.Literal(dim), candidates=sql.Literal(10 * rerank))


class PeakRss:
    """The highest RSS of the backend building an index (its parallel worker is not counted), every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):  # a sampling period, not a synchronisation
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_search(
    conn: psycopg.Connection, query: sql.Composed, queries: np.ndarray
) -> tuple[list[float], list[list[int]]]:
    latencies, found = [], []
    for q in queries:
        began = time.perf_counter()
        rows = conn.execute(query, {"q": q}).fetchall()
        latencies.append((time.perf_counter() - began) * 1000)
        found.append([row[0] for row in rows])
    return latencies, found


def recall_at_10(found: list[list[int]], exact: np.ndarray) -> float:
    return sum(len(set(f) & set(e.tolist())) for f, e in zip(found, exact, strict=True)) / exact.size


def exact_top10(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = np.empty((len(queries), len(vectors)), dtype=np.float32)
    for start in range(0, len(vectors), 200_000):
        scores[:, start : start + 200_000] = queries @ vectors[start : start + 200_000].T
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", default="40,100,200", help="hnsw.ef_search values, comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rerank", type=int, default=4, help="binary: candidates per result re-ranked")
    parser.add_argument("--noise", type=float, default=0.5)
    args = parser.parse_args()

    from sage_platform.db import start_embedded_server, stop_embedded_server

    vectors = topped_up(real_vectors(), args.rows, args.noise)
    dim = vectors.shape[1]
    rng = np.random.default_rng(7)
    picks = rng.choice(len(vectors), args.queries, replace=False)
    queries = vectors[picks] + rng.normal(0, 0.3 / np.sqrt(dim), (args.queries, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = exact_top10(vectors, queries)
    print(f"{args.rows} × {dim} vectors, {args.queries} queries, exact top-10 computed", flush=True)

    work = Path(tempfile.mkdtemp(prefix="sage-bench-scale-"))
    work.chmod(0o755)
    url = start_embedded_server(work / "pg")
    results: dict[str, object] = {"rows": args.rows, "dim": dim, "queries": args.queries, "cores": psutil.cpu_count(),
                                  "partitions": args.partitions, "binary_rerank": args.rerank}  # fmt: skip
    try:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
            began = time.perf_counter()
            load(conn, vectors, args.partitions)
            results["load_s"] = round(time.perf_counter() - began, 1)
            conn.execute("SET maintenance_work_mem = '2GB'")
            conn.execute("SET max_parallel_maintenance_workers = 1")  # 2 processes build: the 2 cores
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            for variant in args.variants.split(","):
                results[variant] = measure(conn, variant, dim, args, backend, queries, exact)
                print(f"{variant}: {results[variant]}", flush=True)
    finally:
        stop_embedded_server(work / "pg")
    from bench._results import save_results

    save_results("scale", results)


def measure(
    conn: psycopg.Connection, variant: str, dim: int, args: argparse.Namespace, backend: int,
    queries: np.ndarray, exact: np.ndarray,
) -> dict[str, object]:  # fmt: skip
    with PeakRss(backend) as rss:
        began = time.perf_counter()
        names = build(conn, variant, dim, args.partitions)
        build_s = time.perf_counter() - began
    size = sum(conn.execute("SELECT pg_relation_size(%s::regclass)", (n,)).fetchone()[0] for n in names)  # type: ignore[index]
    out: dict[str, object] = {"build_s": round(build_s, 1), "index_mb": round(size / 2**20, 1),
                              "build_peak_rss_mb": round(rss.peak / 2**20)}  # fmt: skip
    query = query_sql(variant, dim, args.rerank)
    for ef in [int(e) for e in args.ef.split(",")]:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        timed_search(conn, query, queries[:20])  # warm: the index's pages into the cache
        latencies, found = timed_search(conn, query, queries)
        out[f"ef={ef}"] = {"p50_ms": round(statistics.median(latencies), 2),
                           "p99_ms": round(float(np.percentile(latencies, 99)), 2),
                           "recall@10": round(recall_at_10(found, exact), 4)}  # fmt: skip
    for name in names if variant != "partitioned" else ["items_by_doc_vector"]:
        conn.execute(f"DROP INDEX {name}")  # the next variant builds and searches alone
    return out


if __name__ == "__main__":
    main()
