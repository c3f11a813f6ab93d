"""Embedding fan-out: ``chunk_embeddings`` in one process against N step processes, on the same corpus.

Each side gets its own data folder (embedded PostgreSQL, Dagster instance) holding the same documents and
chunks, made first and not timed. Then each side materializes ``chunk_embeddings`` from a cold
``sage materialize --select chunk_embeddings`` (imports and the model load paid on both sides):
- one process: ``SAGE_DAGSTER_EXECUTOR=in_process``, one shard;
- N processes: ``SAGE_DAGSTER_EXECUTOR=multiprocess``, ``SAGE_EMBEDDING_SHARDS=N``, each shard a step process
  whose forward passes get cores/N threads.
Reported per side: distinct chunk texts embedded (equal work), the asset's wall time (first step's start
to last step's end, from Dagster's step stats), texts/s over it, the time shards ran at once, and the
command's wall time. Quality: the two sides' vectors for every text, compared (minimum cosine).

    .venv/bin/python bench/fanout.py [--corpus DIR] [--limit-files N] [--processes 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import DEFAULT_CORPUS, copy_corpus  # noqa: E402

_INSTANCE_VARIABLES = ("DAGSTER_HOME", "SAGE_DAGSTER_PG_URL", "SAGE_DAGSTER_COMPUTE_LOG_DIR")


def _sage(env: dict[str, str], select: str) -> float:
    """A cold ``sage materialize``, recorded in its own side's Dagster instance (not the one last read here)."""
    inherited = {k: v for k, v in os.environ.items() if k not in _INSTANCE_VARIABLES}
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sage_platform.cli", "materialize", "--log-level", "ERROR", "--select", select],
        env={**inherited, **env}, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - began


def _asset_run(data_dir: Path) -> dict[str, Any]:
    """The latest chunk_embeddings materialization's metadata and its steps' span, from the side's instance."""
    from dagster import AssetKey, DagsterInstance

    from sage_platform.config import Settings
    from sage_platform.runtime import prepare_dagster_home

    for name in _INSTANCE_VARIABLES:
        os.environ.pop(name, None)
    prepare_dagster_home(Settings(data_dir=data_dir))
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("chunk_embeddings"))
        assert event is not None and event.asset_materialization is not None
        metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        steps = [s for s in instance.get_run_step_stats(event.run_id) if s.step_key.startswith("chunk_embeddings.")]
    span = max(s.end_time or 0.0 for s in steps) - min(s.start_time or 0.0 for s in steps)
    return {"metadata": metadata, "asset_seconds": span, "steps": len(steps)}


def _vectors(data_dir: Path) -> dict[str, np.ndarray]:
    from sage_platform.config import Settings
    from sage_platform.db import Database

    with Database.from_settings(Settings(data_dir=data_dir)).connect() as conn:
        rows = conn.execute("SELECT text_hash, embedding FROM embeddings").fetchall()
    return {digest: np.asarray(vector.to_numpy(), dtype=np.float32) for digest, vector in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit-files", type=int, default=80)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"{args.corpus} not found: apt-get install python3.11-doc")
    from sage_platform.config import Settings
    from sage_platform.db import stop_embedded_server

    work = Path(tempfile.mkdtemp(prefix="sage-bench-fanout-"))
    work.chmod(0o755)
    files = copy_corpus(args.corpus, work / "corpus", args.limit_files)
    sides = {
        "1 process": {"SAGE_DAGSTER_EXECUTOR": "in_process", "SAGE_EMBEDDING_SHARDS": "1"},
        f"{args.processes} processes": {
            "SAGE_DAGSTER_EXECUTOR": "multiprocess",
            "SAGE_EMBEDDING_SHARDS": str(args.processes),
        },
    }
    results: dict[str, Any] = {"corpus_pages": len(files), "cores": os.cpu_count(), "sides": {}}
    print(f"corpus: {len(files)} pages; {os.cpu_count()} cores; data in {work}", flush=True)
    envs = {}
    for name, extra in sides.items():
        data = work / name.replace(" ", "-")
        envs[name] = {"SAGE_DATA_DIR": str(data), "SAGE_CORPUS_DIR": str(work / "corpus"), **extra}
        _sage({**envs[name], "SAGE_DAGSTER_EXECUTOR": "in_process"}, "raw_documents,document_chunks")
    # Warm-up: the model's files and Python's modules in the page cache, for both sides alike.
    subprocess.run([sys.executable, "-c", "from sage_platform.embeddings.local import LocalEmbedder as L; L().embed(['warm'])"],
                   check=True)  # fmt: skip
    for name in sides:
        seconds = _sage(envs[name], "chunk_embeddings")
        run = _asset_run(Path(envs[name]["SAGE_DATA_DIR"]))
        meta = run["metadata"]
        side = {
            "texts_embedded": meta["embedded"],
            "shards": meta["shards"],
            "shard_processes": meta["shard_processes"],
            "asset_seconds": round(run["asset_seconds"], 2),
            "asset_texts_per_s": round(meta["embedded"] / run["asset_seconds"], 2),
            "slowest_shard_s": meta["slowest_shard_s"],
            "shards_overlap_s": meta["shards_overlap_s"],
            "command_seconds": round(seconds, 2),
        }
        results["sides"][name] = side
        print(name, side, flush=True)
    one, many = (results["sides"][name] for name in sides)
    assert one["texts_embedded"] == many["texts_embedded"], "the two sides did different work"
    first, second = (_vectors(Path(envs[name]["SAGE_DATA_DIR"])) for name in sides)
    assert first.keys() == second.keys()
    cosines = [float(np.dot(first[k], second[k])) for k in first]
    results["min_cosine_between_sides"] = round(min(cosines), 6)
    results["ratio_asset_texts_per_s"] = round(many["asset_texts_per_s"] / one["asset_texts_per_s"], 3)
    from bench._results import save_results

    save_results("fanout", results)
    print(
        f"\nchunk_embeddings over {one['texts_embedded']} distinct chunk texts: 1 process "
        f"{one['asset_texts_per_s']} texts/s ({one['asset_seconds']} s), {args.processes} processes "
        f"{many['asset_texts_per_s']} texts/s ({many['asset_seconds']} s, shards at once for "
        f"{many['shards_overlap_s']} s): ratio {results['ratio_asset_texts_per_s']}; "
        f"min cosine between the sides' vectors {results['min_cosine_between_sides']}"
    )
    for name in sides:
        stop_embedded_server(Settings(data_dir=Path(envs[name]["SAGE_DATA_DIR"])).pgdata_dir)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
