"""Ingestion benchmark: the full asset path against the bare embedding model, in one run.

Corpus: the HTML of Debian's python3.11-doc (`apt-get install python3.11-doc`).
Prints, and writes to bench/results/ingest.json:
- distinct chunk texts embedded per second through the whole graph (Dagster, ingest, chunk, embed,
  index, answer, evaluate) and by the bare model at its fastest batch size on the same distinct
  texts (equal work: the pipeline embeds a repeated text once), and their ratio;
- the time of a re-run after editing 1% of the files (one paragraph each) as a fraction of the
  full run, with how many chunks it re-embedded (against every chunk of those documents): in process,
  from a cold `sage materialize`, and from `sage materialize` handing the run to a warm worker;
- one-file re-runs in process, alternating: query vectors remembered from the run before (as the warm
  worker does) or forgotten first;
- the pgvector load rate against a bare psycopg `COPY ... (FORMAT BINARY)`.

    .venv/bin/python bench/ingest.py [--corpus DIR] [--limit-files N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_CORPUS = Path("/usr/share/doc/python3.11/html")


def copy_corpus(source: Path, target: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in source.rglob("*.html") if p.is_file())
    if limit:
        files = files[:limit]
    out = []
    for path in files:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        out.append(destination)
    return out


def edit_one_paragraph(path: Path, rng: random.Random) -> bool:
    """Append a sentence inside one long <p> in the second half of the page."""
    html = path.read_text(encoding="utf-8")
    paragraphs = [m for m in re.finditer(r"<p>(.{200,}?)</p>", html, re.S) if m.start() > len(html) // 3]
    if not paragraphs:
        return False
    match = rng.choice(paragraphs)
    edited = html[: match.end(1)] + " This sentence was added by the benchmark." + html[match.end(1) :]
    path.write_text(edited, encoding="utf-8")
    return True


def last_metadata(instance, asset: str) -> dict:  # type: ignore[no-untyped-def]
    from dagster import AssetKey

    event = instance.get_latest_materialization_event(AssetKey(asset))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def compare_copy(db, vectors: np.ndarray, rounds: int = 5) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Rows/s of bare psycopg binary COPY (row by row, C-accelerated) and of our piecewise numpy
    payload, into fresh unlogged tables (the pipeline stages into a temp table, also unlogged);
    rounds alternate which goes first; the median of each."""
    from sage_platform.db.copy_binary import vector_rows_pieces

    keys = [f"{i:064x}" for i in range(len(vectors))]
    vectors = np.asarray(vectors, dtype=np.float32)

    def bare_load(conn, table: str) -> None:  # type: ignore[no-untyped-def]
        with conn.cursor().copy(f"COPY {table} (text_hash, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "vector"])
            for key, vector in zip(keys, vectors, strict=True):
                copy.write_row((key, vector))

    def our_load(conn, table: str) -> None:  # type: ignore[no-untyped-def]
        with conn.cursor().copy(f"COPY {table} (text_hash, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            for piece in vector_rows_pieces(keys, vectors):
                copy.write(piece)

    rates: dict[str, list[float]] = {"bare": [], "ours": []}
    with db.connect() as conn:
        for round_ in range(rounds):
            order = [("bare", bare_load), ("ours", our_load)]
            for name, load in order if round_ % 2 == 0 else reversed(order):
                table = f"load_{name}_{round_}"
                conn.execute(f"CREATE UNLOGGED TABLE {table} (text_hash text, embedding vector({vectors.shape[1]}))")
                conn.commit()
                began = time.perf_counter()
                load(conn, table)
                conn.commit()
                rates[name].append(len(keys) / (time.perf_counter() - began))
        same = conn.execute(
            "SELECT count(*) FROM load_bare_0 b JOIN load_ours_0 o USING (text_hash) WHERE b.embedding = o.embedding"
        ).fetchone()
        assert same == (len(keys),), "binary payload differs from psycopg's"
        for round_ in range(rounds):
            conn.execute(f"DROP TABLE load_bare_{round_}, load_ours_{round_}")
    return statistics.median(rates["bare"]), statistics.median(rates["ours"])


def copy_only(rows: int) -> None:
    """Just the load comparison, on unit vectors drawn at random (content does not change COPY speed)."""
    from sage_platform.config import Settings
    from sage_platform.db import Database, stop_embedded_server

    work = Path(tempfile.mkdtemp(prefix="sage-bench-copy-"))
    work.chmod(0o755)
    settings = Settings(data_dir=work)
    db = Database.from_settings(settings)
    vectors = np.random.default_rng(0).normal(size=(rows, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    bare, ours = compare_copy(db, vectors)
    result = {"rows": rows, "copy_binary_bare_rows_per_s": round(bare), "copy_binary_ours_rows_per_s": round(ours),
              "copy_ratio_ours_over_bare": round(ours / bare, 3)}  # fmt: skip
    print(json.dumps(result, indent=2))
    print(
        f"COPY BINARY: ours {ours:,.0f} rows/s vs bare psycopg {bare:,.0f} rows/s: ratio {ours / bare:.2f} (goal >= 0.8)"
    )
    stop_embedded_server(settings.pgdata_dir)
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit-files", type=int, default=None, help="use only the first N pages")
    parser.add_argument("--edit-fraction", type=float, default=0.01)
    parser.add_argument("--batch-sizes", default="8,10,16,32,64", help="bare-model batch sizes to calibrate")
    parser.add_argument("--calibration-texts", type=int, default=1500)
    parser.add_argument("--one-file-pairs", type=int, default=3, help="in-process one-file re-runs, per side")
    parser.add_argument(
        "--copy-only", type=int, metavar="ROWS", help="only the COPY comparison, on ROWS random vectors"
    )
    args = parser.parse_args()
    if args.copy_only:
        copy_only(args.copy_only)
        return
    if not args.corpus.is_dir():
        sys.exit(f"{args.corpus} not found: apt-get install python3.11-doc")

    work = Path(tempfile.mkdtemp(prefix="sage-bench-ingest-"))
    work.chmod(0o755)
    corpus = work / "corpus"
    files = copy_corpus(args.corpus, corpus, args.limit_files)
    os.environ.update({"SAGE_DATA_DIR": str(work / "data"), "SAGE_CORPUS_DIR": str(corpus)})

    from dagster import DagsterInstance

    from sage_platform.config import Settings
    from sage_platform.db import Database, stop_embedded_server
    from sage_platform.embeddings.local import LocalEmbedder
    from sage_platform.runtime import materialize_graph

    settings = Settings()
    print(f"corpus: {len(files)} HTML pages from {args.corpus}; data in {work}", flush=True)

    began = time.perf_counter()
    assert materialize_graph(settings, log_level="WARNING"), "first materialization failed"
    full_seconds = time.perf_counter() - began
    db = Database.from_settings(settings)
    with DagsterInstance.get() as instance:
        first = {
            a: last_metadata(instance, a)
            for a in ("raw_documents", "document_chunks", "chunk_embeddings", "pgvector_index")
        }
    with db.connect() as conn:
        texts = [row[0] for row in conn.execute("SELECT text FROM chunks ORDER BY doc_id, position")]
        chunk_counts = dict(conn.execute("SELECT doc_id, count(*) FROM chunks GROUP BY doc_id").fetchall())
    chunks = len(texts)
    print(f"pipeline: {chunks} chunks in {full_seconds:.1f}s", flush=True)

    # Re-run after editing 1% of the files, one paragraph each: in this process (model warm) ...
    rng = random.Random(42)
    order = rng.sample(files, len(files))
    wanted = max(1, round(len(files) * args.edit_fraction))

    def edit_batch(count: int = wanted) -> list[str]:
        edited: list[str] = []
        while order and len(edited) < count:
            path = order.pop()
            if edit_one_paragraph(path, rng):
                edited.append(path.relative_to(corpus).as_posix())
        return edited

    edited_ids = edit_batch()
    began = time.perf_counter()
    assert materialize_graph(settings, log_level="WARNING"), "re-run failed"
    rerun_seconds = time.perf_counter() - began
    with DagsterInstance.get() as instance:
        rerun_embedded = last_metadata(instance, "chunk_embeddings")["embedded"]
    whole_docs = sum(chunk_counts.get(doc, 0) for doc in edited_ids)

    # One-file re-runs in this process (as in the warm worker), in alternating order: the platform's
    # query vectors kept from the run before, or forgotten first (each run embeds the golden questions again).
    from sage_platform import resources
    from sage_platform.embeddings.query_cache import QueryEmbedder

    one_file: dict[str, list[float]] = {"remembered": [], "forgotten": []}
    for pair in range(args.one_file_pairs):
        for side in ("forgotten", "remembered") if pair % 2 else ("remembered", "forgotten"):
            if side == "forgotten":
                for platform in resources._PLATFORMS.values():
                    if isinstance(platform.query_embedder, QueryEmbedder):
                        platform.query_embedder.forget()
            assert edit_batch(1), "no page left to edit"
            began = time.perf_counter()
            assert materialize_graph(settings, log_level="WARNING"), "one-file re-run failed"
            one_file[side].append(time.perf_counter() - began)

    # ... and as a fresh `sage materialize` process, paying imports and the model load.
    cold_ids = edit_batch()
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sage_platform.cli", "materialize", "--log-level", "WARNING"], check=True)
    cold_seconds = time.perf_counter() - began
    with DagsterInstance.get() as instance:
        cold_embedded = last_metadata(instance, "chunk_embeddings")["embedded"]

    # ... and as a fresh `sage materialize` process that hands the run to a warm worker (as under `sage up`).
    worker = subprocess.Popen([sys.executable, "-m", "sage_platform.cli", "worker"], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    for line in worker.stdout:  # ends when the worker exits, so a dead worker cannot hang the bench
        if "warmed up in" in line:
            worker_warm_up = float(line.rsplit(" ", 1)[1].rstrip("s\n"))
        if "ready on" in line:
            break
    assert worker.poll() is None, "the warm worker exited"
    warm_ids = edit_batch()
    began = time.perf_counter()
    client = subprocess.run([sys.executable, "-m", "sage_platform.cli", "materialize", "--log-level", "WARNING"],
                            check=True, capture_output=True, text=True)  # fmt: skip
    warm_seconds = time.perf_counter() - began
    assert "running in the warm worker" in client.stderr, client.stderr
    worker.send_signal(signal.SIGINT)
    worker.wait(timeout=120)
    with DagsterInstance.get() as instance:
        warm_embedded = last_metadata(instance, "chunk_embeddings")["embedded"]

    # What the data-quality suites (the blocking asset checks, included in every run above) cost here.
    from sage_platform.quality import chunks_quality, documents_quality, embeddings_quality, index_quality

    quality_seconds = {}
    for name, suite in (
        ("documents", lambda: documents_quality(db, settings)),
        ("chunks", lambda: chunks_quality(db, settings)),
        ("embeddings", lambda: embeddings_quality(db, model=first["chunk_embeddings"]["model"], dim=384)),
        ("index", lambda: index_quality(db)),
    ):
        began = time.perf_counter()
        assert suite().success, name
        quality_seconds[name] = round(time.perf_counter() - began, 2)

    # The bare model, on the same work the pipeline's embedding did: each distinct chunk text once (the
    # pipeline embeds a text once however many chunks hold it), at the model's fastest batch size. The
    # bare side is the reference library, sentence-transformers; the pipeline computes the same model
    # on torch alone (sage_platform/embeddings/_bert.py), and the vectors are compared below.
    from sentence_transformers import SentenceTransformer

    distinct = list(dict.fromkeys(texts))
    model = SentenceTransformer(str(LocalEmbedder().model_dir), device="cpu")
    sample = random.Random(7).sample(distinct, min(args.calibration_texts, len(distinct)))
    calibration = {}
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        began = time.perf_counter()
        model.encode(sample, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
        calibration[batch] = len(sample) / (time.perf_counter() - began)
    best_batch = max(calibration, key=calibration.get)  # type: ignore[arg-type]
    began = time.perf_counter()
    vectors = model.encode(distinct, batch_size=best_batch, normalize_embeddings=True, convert_to_numpy=True)
    bare_seconds = time.perf_counter() - began

    bare_copy, ours_copy = compare_copy(db, vectors)
    # Quality: the pipeline's stored vector for every text still in the corpus against the bare model's.
    with db.connect() as conn:
        stored = dict(
            conn.execute(
                "SELECT DISTINCT c.text, e.embedding FROM chunks c JOIN embeddings e ON e.text_hash = c.text_hash"
            ).fetchall()
        )
    bare_by_text = dict(zip(distinct, vectors, strict=True))
    compared = [text for text in stored if text in bare_by_text]
    min_cosine = min(float(np.dot(stored[t].to_numpy(), bare_by_text[t])) for t in compared)

    embedded = first["chunk_embeddings"]["embedded"]
    assert embedded == len(distinct), f"the pipeline embedded {embedded} texts, the bare side {len(distinct)}"
    pipeline_rate = embedded / full_seconds
    bare_rate = len(distinct) / bare_seconds
    results = {
        "corpus_pages": len(files),
        "chunks": chunks,
        "distinct_chunk_texts": len(distinct),
        "texts_embedded_pipeline": embedded,
        "texts_embedded_bare": len(distinct),
        "pipeline_seconds": round(full_seconds, 2),
        "pipeline_texts_per_s": round(pipeline_rate, 2),
        "bare_batch_calibration_texts_per_s": {k: round(v, 2) for k, v in calibration.items()},
        "bare_best_batch": best_batch,
        "bare_seconds": round(bare_seconds, 2),
        "bare_texts_per_s": round(bare_rate, 2),
        "ratio_pipeline_over_bare": round(pipeline_rate / bare_rate, 3),
        "vectors_compared_with_bare": len(compared),
        "min_cosine_pipeline_vs_bare": round(min_cosine, 6),
        "rerun_edited_files": len(edited_ids),
        "rerun_seconds": round(rerun_seconds, 2),
        "rerun_fraction_of_full": round(rerun_seconds / full_seconds, 4),
        "rerun_reembedded_chunks": rerun_embedded,
        "rerun_chunks_of_edited_docs": whole_docs,
        "one_file_rerun_seconds_query_vectors_remembered": [round(t, 2) for t in one_file["remembered"]],
        "one_file_rerun_seconds_query_vectors_forgotten": [round(t, 2) for t in one_file["forgotten"]],
        "cold_cli_rerun_edited_files": len(cold_ids),
        "cold_cli_rerun_seconds": round(cold_seconds, 2),
        "cold_cli_rerun_fraction_of_full": round(cold_seconds / full_seconds, 4),
        "cold_cli_rerun_reembedded_chunks": cold_embedded,
        "cold_cli_rerun_chunks_of_edited_docs": sum(chunk_counts.get(doc, 0) for doc in cold_ids),
        "warm_worker_cli_rerun_edited_files": len(warm_ids),
        "warm_worker_cli_rerun_seconds": round(warm_seconds, 2),
        "warm_worker_cli_rerun_reembedded_chunks": warm_embedded,
        "warm_worker_warm_up_seconds": worker_warm_up,
        "copy_binary_bare_rows_per_s": round(bare_copy),
        "copy_binary_ours_rows_per_s": round(ours_copy),
        "copy_ratio_ours_over_bare": round(ours_copy / bare_copy, 3),
        "index_insert_select_rows_per_s": first["pgvector_index"]["load_rows_per_s"],
        "index_hnsw_build_s": first["pgvector_index"]["hnsw_build_s"],
        "asset_seconds": {a: m.get("duration_s", m.get("build_time_s")) for a, m in first.items()},
        "quality_suite_seconds": quality_seconds,
    }
    from bench._results import save_results

    save_results("ingest", results)
    print(
        f"\npipeline {pipeline_rate:.2f} texts/s vs bare model (batch {best_batch}) {bare_rate:.2f} texts/s "
        f"({len(distinct)} distinct chunk texts each): "
        f"ratio {pipeline_rate / bare_rate:.3f} (goal >= 0.97); min cosine to the bare vectors {min_cosine:.6f} "
        f"over {len(compared)} texts\n"
        f"re-run after editing {len(edited_ids)} files: {rerun_seconds:.1f}s = {rerun_seconds / full_seconds:.4f} "
        f"of the full run (goal <= 0.02); re-embedded {rerun_embedded} chunks, against {whole_docs} chunks in "
        f"those documents\n"
        f"one-file re-runs in process (goal <= 3 s), median of {args.one_file_pairs}: "
        f"{statistics.median(one_file['remembered']):.2f}s with the golden questions' vectors remembered, "
        f"{statistics.median(one_file['forgotten']):.2f}s with them forgotten (embedded again)\n"
        f"cold `sage materialize` re-run after editing {len(cold_ids)} more files: {cold_seconds:.1f}s = "
        f"{cold_seconds / full_seconds:.4f} of the full run; re-embedded {cold_embedded} chunks\n"
        f"`sage materialize` with a warm worker after editing {len(warm_ids)} more: {warm_seconds:.1f}s "
        f"(goal <= 8 s); re-embedded {warm_embedded} chunks (the worker warmed up in {worker_warm_up:.1f}s)\n"
        f"COPY BINARY: ours {ours_copy:,.0f} rows/s vs bare psycopg {bare_copy:,.0f} rows/s: "
        f"ratio {ours_copy / bare_copy:.2f} (goal >= 0.8)"
    )
    stop_embedded_server(settings.pgdata_dir)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
