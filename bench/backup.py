"""Backup benchmark: a verified backup of a database holding 100,000 chunks with vectors and their index.

Chunk texts are PubMedQA abstracts (../shared/data/pubmedqa), repeated to 100k rows; vectors are
random unit vectors (their values do not matter to a backup); the versioned pgvector index table
(HNSW + GIN) is built as the pipeline builds it. Reports backup MB/s (ours: manifest in the dump's
snapshot + pg_dump -Fc; baseline in the same run: a bare pg_dump -Fc of the same database), the
restore-and-verify time, and the ratio of verify time to backup time.

    .venv/bin/python bench/backup.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa" / "pqal_dev.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    from bench._corpus import load_chunks
    from bench._results import save_results
    from sage_platform.config import Settings
    from sage_platform.db import Database, start_embedded_server, stop_embedded_server
    from sage_platform.index import IndexChecks, rebuild_pgvector_index
    from sage_platform.ops.backup import backup_now
    from sage_platform.ops.pgtools import pg_tool

    work = Path(tempfile.mkdtemp(prefix="sage-bench-backup-"))
    work.chmod(0o755)
    server = start_embedded_server(work / "pg")
    settings = Settings(database_url=server, data_dir=work)
    db = Database.from_settings(settings)
    abstracts = [(pmid, " ".join(item["CONTEXTS"])) for pmid, item in json.loads(PUBMEDQA.read_text()).items()]
    rows = [(f"{abstracts[i % len(abstracts)][0]}#{i // len(abstracts)}", i % 7,
             f"{abstracts[i % len(abstracts)][1]} ({i})") for i in range(args.rows)]  # fmt: skip
    vectors = np.random.default_rng(1).normal(size=(args.rows, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    began = time.perf_counter()
    load_chunks(db, rows, vectors, "bench/random-384")
    rebuild_pgvector_index(db, model="bench/random-384", dim=384, checks=IndexChecks(sample_queries=20, min_recall=0.0))
    print(f"loaded and indexed {args.rows} chunks in {time.perf_counter() - began:.0f} s", flush=True)

    bare_path = work / "bare.dump"
    began = time.perf_counter()
    subprocess.run([str(pg_tool("pg_dump", db.url)), "-Fc", "-f", str(bare_path), "-d", db.url], check=True)  # defaults
    bare_seconds = time.perf_counter() - began
    bare_mb = bare_path.stat().st_size / 2**20

    result = backup_now(settings, db)
    mb = result.size_bytes / 2**20
    results = {
        "rows": args.rows, "backup_mb": round(mb, 1),
        "backup_seconds": round(result.dump_seconds, 2), "backup_mb_per_s": round(mb / result.dump_seconds, 1),
        "bare_pg_dump_seconds": round(bare_seconds, 2), "bare_pg_dump_mb_per_s": round(bare_mb / bare_seconds, 1),
        "backup_vs_bare_time": round(result.dump_seconds / bare_seconds, 2),
        "restore_and_verify_seconds": round(result.verify_seconds, 2),
        "verify_over_backup_time": round(result.verify_seconds / result.dump_seconds, 2),
        "tables_verified": len(result.tables), "all_match": result.verified,
    }  # fmt: skip
    save_results("backup", results)
    db.close()
    stop_embedded_server(work / "pg")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
