"""Memory server benchmark: get_context and save_conversation through the official MCP client over HTTP.

100,000 memories recombined from the PubMedQA dev set (../shared/data/pubmedqa): each pairs one
item's question with two context sentences of other items. Embedding 100k texts would take most of
an hour here, so each memory's vector is the normalised sum of its parts' real embeddings (the
questions and sentences are embedded with the local model, cached in bench/.cache). Memories are
bulk-loaded, then the HNSW index is built; `sage mcp` serves them on loopback with a bearer token.

Latencies are measured at the client (the server's own report of its embedding time is shown beside
them, as information). The search alone is compared in the same run, on the same 500 query vectors,
interleaved: our HNSW path (with its recall@10) against the seed's design, a typed vector column with
no index (an exact scan of all 100k vectors).

    .venv/bin/python bench/memory.py [--memories 100000] [--calls 500]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa" / "pqal_dev.json"
TOKEN = "bench-token"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))], 2)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values), 2), "p95_ms": pct(values, 95)}


def embed_cached(embedder: Any, texts: list[str]) -> np.ndarray:
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    cache = ROOT / "bench" / ".cache" / f"pubmedqa-parts-{digest}.npy"
    if cache.exists():
        return np.load(cache)
    vectors = embedder.embed(texts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def build_memories(count: int, embedder: Any) -> tuple[list[tuple[str, str, str]], np.ndarray, list[str]]:
    items = list(json.loads(PUBMEDQA.read_text()).values())
    questions = [item["QUESTION"] for item in items]
    sentences = [s.strip() for item in items for c in item["CONTEXTS"] for s in re.split(r"(?<=\.)\s+", c)
                 if len(s.strip()) > 40]  # fmt: skip
    began = time.perf_counter()
    q_vectors = embed_cached(embedder, questions)
    s_vectors = embed_cached(embedder, sentences)
    print(f"parts: {len(questions)} questions, {len(sentences)} sentences ({time.perf_counter() - began:.0f} s)")
    rng = np.random.default_rng(7)
    qi = rng.integers(len(questions), size=count)
    si = rng.integers(len(sentences), size=(count, 2))
    vectors = q_vectors[qi] + s_vectors[si[:, 0]] + s_vectors[si[:, 1]]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [
        (f"s{i % 500}", questions[q], f"{sentences[a]} {sentences[b]}")
        for i, (q, (a, b)) in enumerate(zip(qi, si, strict=True))
    ]
    return rows, vectors.astype(np.float32), questions


def bulk_load(db: Any, store: Any, rows: list[tuple[str, str, str]], vectors: np.ndarray) -> float:
    from sage_platform.db.copy_binary import vector_rows_pieces
    from sage_platform.identity import DEFAULT_USER

    began = time.perf_counter()
    ids = [hashlib.md5(str(i).encode()).hexdigest() for i in range(len(rows))]
    with db.connect() as conn:
        # The bench's bare token belongs to the user "default", whose memories these are.
        with conn.cursor().copy("COPY memory_sessions (user_id, session_id) FROM STDIN") as copy:
            for session in sorted({r[0] for r in rows}):
                copy.write_row((DEFAULT_USER, session))
        conn.execute("CREATE TEMP TABLE staging (id text, embedding vector)")
        with conn.cursor().copy("COPY staging (id, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            for piece in vector_rows_pieces(ids, vectors):
                copy.write(piece)
        conn.execute("CREATE TEMP TABLE texts (id text, session_id text, user_input text, assistant_response text)")
        with conn.cursor().copy("COPY texts FROM STDIN") as copy:
            for memory_id, (session, question, answer) in zip(ids, rows, strict=True):
                copy.write_row((memory_id, session, question, answer))
        conn.execute(
            """INSERT INTO memories (memory_id, user_id, session_id, user_input, assistant_response, model, dim,
                                     embedding, content_hash, tsv, created_at)
               SELECT t.id::uuid, %s, t.session_id, t.user_input, t.assistant_response, %s, %s, s.embedding,
                      md5(t.session_id || t.user_input || t.assistant_response),
                      to_tsvector('english', t.user_input || ' ' || t.assistant_response),
                      now() - random() * interval '30 days'
               FROM texts t JOIN staging s USING (id)""",
            (DEFAULT_USER, store.model, store.dim),
        )
    return time.perf_counter() - began


async def mcp_calls(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[float, dict[str, Any]]]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    out = []
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        streamable_http_client(url, http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for _ in range(10):  # warm-up: connections, caches, prepared statements
            await session.call_tool("get_context", {"query": "warm up"})
        for name, arguments in calls:
            began = time.perf_counter()
            result = await session.call_tool(name, arguments)
            elapsed = (time.perf_counter() - began) * 1000
            if result.is_error:
                raise RuntimeError(result.content[0].text)  # type: ignore[union-attr]
            out.append((elapsed, result.structured_content or json.loads(result.content[0].text)))  # type: ignore[union-attr]
    return out


def search_alone(db: Any, query_vectors: np.ndarray, dim: int) -> dict[str, Any]:
    """The nearest-neighbour search by itself, on the same query vectors, both sides warmed and
    interleaved query by query: ours through the memory server's HNSW index (the partial expression
    index it searches), the seed's design as a typed vector column with no index (an exact scan, no
    cast). recall@10 of ours is against that exact answer."""
    with db.connect() as conn:
        typed = sql.SQL("embedding::vector({})").format(sql.Literal(dim))
        conn.execute(sql.SQL("CREATE TABLE seed_memories AS SELECT memory_id, {} AS embedding FROM memories"
                             " WHERE dim = {}").format(typed, sql.Literal(dim)))  # fmt: skip
        conn.execute("ANALYZE seed_memories")
        conn.commit()
        conn.execute("SET hnsw.ef_search = 100")
        ours_sql = sql.SQL("SELECT memory_id FROM memories WHERE dim = {} ORDER BY {} <=> %s LIMIT 10").format(
            sql.Literal(dim), typed
        )
        seed_sql = "SELECT memory_id FROM seed_memories ORDER BY embedding <=> %s LIMIT 10"
        for vector in query_vectors[:20]:  # warm both
            conn.execute(ours_sql, (vector,)).fetchall()
            conn.execute(seed_sql, (vector,)).fetchall()
        timings: dict[str, list[float]] = {"ours": [], "seed": []}
        found: dict[str, list[set[Any]]] = {"ours": [], "seed": []}
        for i, vector in enumerate(query_vectors):
            order = [("ours", ours_sql), ("seed", seed_sql)]
            for side, statement in order if i % 2 == 0 else order[::-1]:
                began = time.perf_counter()
                rows = conn.execute(statement, (vector,)).fetchall()
                timings[side].append((time.perf_counter() - began) * 1000)
                found[side].append({r[0] for r in rows})
        plan = "\n".join(r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + ours_sql, (query_vectors[0],)))
        conn.execute("DROP TABLE seed_memories")
    assert "hnsw" in plan, plan
    recall = sum(len(o & e) for o, e in zip(found["ours"], found["seed"], strict=True)) / (10 * len(query_vectors))
    return {
        "queries_each": len(query_vectors),
        "ours_hnsw": {**summary(timings["ours"]), "recall@10": round(recall, 4)},
        "seed_exact_scan": summary(timings["seed"]),
        "p95_ratio_seed_over_ours": round(summary(timings["seed"])["p95_ms"] / summary(timings["ours"])["p95_ms"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=500, help="calls of each tool")
    args = parser.parse_args()

    from sage_platform.config import Settings
    from sage_platform.db import stop_embedded_server
    from sage_platform.memory_server.server import MemoryService

    work = Path(tempfile.mkdtemp(prefix="sage-bench-memory-"))
    work.chmod(0o755)
    env = {**os.environ, "SAGE_DATA_DIR": str(work), "SAGE_MCP_TOKENS": TOKEN, "HF_HUB_OFFLINE": "1"}
    os.environ.update(env)
    memory = MemoryService.from_settings(Settings())
    store, db = memory.store, memory.store.db
    rows, vectors, questions = build_memories(args.memories, memory.embedder)
    with db.connect(autocommit=True) as conn:  # built once after the load, not row by row during it
        conn.execute("DROP INDEX IF EXISTS memories_hnsw_vector_384")
    load_s = bulk_load(db, store, rows, vectors)
    began = time.perf_counter()
    store.ensure_index()
    index_s = time.perf_counter() - began
    with db.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE memories")
    print(f"loaded {args.memories} memories in {load_s:.1f} s; HNSW index {index_s:.1f} s", flush=True)

    rng = random.Random(3)
    queries = [rng.choice(questions) for _ in range(args.calls)]
    search = search_alone(db, memory.embedder.embed(queries), store.dim)
    print(f"search alone: {json.dumps(search)}", flush=True)

    port = str(17800 + random.Random().randrange(1000))
    server = subprocess.Popen([sys.executable, "-m", "sage_platform.cli", "mcp", "--port", port],
                              env=env, start_new_session=True)  # fmt: skip
    try:
        import urllib.request

        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)  # polling a starting server
        url = f"http://127.0.0.1:{port}/mcp"
        context_calls = [("get_context", {"query": q}) for q in queries]
        saves = [("save_conversation", {"user_input": f"{q} (follow-up {i})", "assistant_response": rows[i][2],
                                        "session_id": f"bench-{i % 20}"}) for i, q in enumerate(queries)]  # fmt: skip
        context = asyncio.run(mcp_calls(url, context_calls))
        saved = asyncio.run(mcp_calls(url, saves))
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(60)

    def split(results: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
        total = [t for t, _ in results]
        embedding = [r["timings_ms"]["embedding"] for _, r in results]
        return {"total": summary(total), "embedding": summary(embedding),
                "excluding_embedding": summary([t - e for t, e in zip(total, embedding, strict=True)])}  # fmt: skip

    results = {
        "memories": args.memories, "calls_each": args.calls, "bulk_load_s": round(load_s, 1),
        "hnsw_index_s": round(index_s, 1),
        "get_context": split(context), "save_conversation": split(saved),
        "search_alone": search,
    }  # fmt: skip
    from bench._results import save_results

    save_results("memory", results)
    db.pool.close()
    stop_embedded_server(work / "pg")


if __name__ == "__main__":
    main()
