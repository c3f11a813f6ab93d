"""Backup benchmark: a verified backup of a database holding 100,000 chunks with vectors and their index.

Chunk texts are PubMedQA abstracts (../shared/data/pubmedqa), repeated to 100k rows; vectors are
random unit vectors (their values do not matter to a backup); the versioned pgvector index table
(HNSW + GIN) is built as the pipeline builds it. Reports backup MB/s (ours: whole-row manifest in the
dump's snapshot + pg_dump -Fc; baseline in the same run: a bare pg_dump -Fc of the same database at the
same compression level, after a warm-up dump, timed before and after ours), pg_dump's default level for
reference, the restore-and-verify time, and the ratio of verify time to backup time.

With ``--s3`` it also keeps a backup in S3-compatible storage: the endpoint in SAGE_S3_ENDPOINT_URL,
SAGE_S3_ACCESS_KEY_ID and SAGE_S3_SECRET_ACCESS_KEY if set, otherwise a one-node Ceph RADOS Gateway on
loopback (tests/s3_server.py; memory-backed), and reports upload and download MB/s.

    .venv/bin/python bench/backup.py [--rows 100000] [--s3]
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
    parser.add_argument("--s3", action="store_true", help="also back up to S3-compatible storage")
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

    def bare_dump(*flags: str) -> tuple[float, float]:
        """A bare pg_dump -Fc of the same database: (seconds, MB)."""
        path = work / "bare.dump"
        began = time.perf_counter()
        subprocess.run([str(pg_tool("pg_dump", db.url)), "-Fc", *flags, "-f", str(path), "-d", db.url], check=True)
        seconds, mb = time.perf_counter() - began, path.stat().st_size / 2**20
        path.unlink()
        return seconds, mb

    # Equal work: the bare dump uses our compression level. A warm-up dump first (cache), then bare runs
    # before and after ours, so neither side is the cold or the only late one.
    level = f"--compress={settings.backup_compression}"
    bare_dump(level)
    before, bare_mb = bare_dump(level)
    result = backup_now(settings, db)
    after, _ = bare_dump(level)
    bare_seconds = (before + after) / 2
    default_seconds, default_mb = bare_dump()  # pg_dump's own default compression, for reference
    mb = result.size_bytes / 2**20
    results = {
        "rows": args.rows, "compression": settings.backup_compression, "backup_mb": round(mb, 1),
        "backup_seconds": round(result.dump_seconds, 2), "backup_mb_per_s": round(mb / result.dump_seconds, 1),
        "bare_pg_dump_same_level_seconds": [round(before, 2), round(after, 2)],
        "bare_pg_dump_same_level_mb": round(bare_mb, 1),
        "bare_pg_dump_same_level_mb_per_s": round(bare_mb / bare_seconds, 1),
        "backup_vs_bare_time": round(result.dump_seconds / bare_seconds, 2),
        "bare_pg_dump_default_level_seconds": round(default_seconds, 2),
        "bare_pg_dump_default_level_mb": round(default_mb, 1),
        "restore_and_verify_seconds": round(result.verify_seconds, 2),
        "verify_over_backup_time": round(result.verify_seconds / result.dump_seconds, 2),
        "tables_verified": len(result.tables), "all_match": result.verified,
    }  # fmt: skip
    if args.s3:
        results.update(s3_figures(settings, db))
    save_results("backup", results)
    db.close()
    stop_embedded_server(work / "pg")
    shutil.rmtree(work, ignore_errors=True)


def s3_figures(settings, db) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """A second verified backup, kept in S3; upload (store) and download MB/s."""
    import uuid

    from sage_platform.ops.backup import backup_now
    from sage_platform.ops.storage import backup_storage, s3_client
    from tests.s3_server import s3_endpoint

    with s3_endpoint() as endpoint:
        bucket = f"sage-bench-{uuid.uuid4().hex[:8]}"
        s3 = endpoint.settings(settings, bucket)
        s3_client(s3).create_bucket(Bucket=bucket)
        began = time.perf_counter()
        result = backup_now(s3, db)
        total = time.perf_counter() - began
        mb = result.size_bytes / 2**20
        began = time.perf_counter()
        with backup_storage(s3).local_copy(result.location.rsplit("/", 1)[-1]):
            download = time.perf_counter() - began
        return {
            "s3_backup_total_seconds": round(total, 2), "s3_upload_seconds": round(result.store_seconds, 2),
            "s3_upload_mb_per_s": round(mb / result.store_seconds, 1), "s3_download_seconds": round(download, 2),
            "s3_download_mb_per_s": round(mb / download, 1),
        }  # fmt: skip


if __name__ == "__main__":
    main()
