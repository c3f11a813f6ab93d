"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh database per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

import sage_platform
from sage_platform.config import Settings
from sage_platform.db import Database, start_embedded_server
from sage_platform.db.embedded import discard_embedded_server
from sage_platform.db.urls import with_database

if TYPE_CHECKING:
    from sage_platform.platform import Platform

# ../shared beside the repository (found from a copy of the tests too, such as mutmut's mutants/).
PUBMEDQA = next(
    (p / "shared" / "data" / "pubmedqa" / "pqal_dev.json" for p in Path(__file__).resolve().parents
     if (p / "shared" / "data" / "pubmedqa").is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa" / "pqal_dev.json",
)  # fmt: skip


# A running server to use instead of starting one: `make mutation` shares one across all its pytest runs.
TEST_SERVER_URL = os.environ.get("SAGE_TEST_SERVER_URL", "")


def _platform_variable(name: str) -> bool:
    return name.startswith("SAGE_") or name == "DAGSTER_HOME"


@pytest.fixture(autouse=True)
def _clean_environment() -> Iterator[None]:
    """Tests see only the SAGE_* settings they set; whatever code under test exports is undone."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if _platform_variable(n)]:
        del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)
    _close_cached_platforms()


class _TestDay:
    """One UTC day for the whole test: a reader's first read of a day reads the whole table
    (db/change_notes.py), and a test crossing midnight must not see that."""

    day = datetime(2026, 12, 2, 12, tzinfo=UTC)

    @classmethod
    def now(cls, tz: object = None) -> datetime:
        return cls.day


@pytest.fixture(autouse=True)
def _one_day_for_change_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    from sage_platform.db import change_notes

    monkeypatch.setattr(change_notes, "datetime", _TestDay)


def _close_cached_platforms() -> None:
    """Platforms cached by the Dagster resource hold read pools; a test's database goes with it."""
    from sage_platform import resources

    for platform in resources._PLATFORMS.values():
        if "db" in platform.__dict__:
            platform.db.close()
    resources._PLATFORMS.clear()
    if "sage_platform.kept_instance" in sys.modules:  # Dagster's connections to the test's database
        sys.modules["sage_platform.kept_instance"].dispose_kept_instance()
    if "sage_platform.dataflow.library._platform" in sys.modules:
        sys.modules["sage_platform.dataflow.library._platform"].close_platforms()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    if TEST_SERVER_URL:
        yield TEST_SERVER_URL
        return
    root = Path(tempfile.mkdtemp(prefix="sage-test-"))
    root.chmod(0o755)  # the server runs as its own system user when tests run as root
    url = start_embedded_server(root / "pg")
    yield url
    discard_embedded_server(root / "pg")  # no shutdown checkpoint of hundreds of test databases
    # Their files (about 100,000, several GB) go in the background: deleting them took most of a minute.
    subprocess.Popen(["rm", "-rf", str(root)], start_new_session=True)


def create_database(server_url: str, template: str = "template1") -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return with_database(server_url, name)


def cloned_database(server_url: str, template: str, build: Callable[[str], None]) -> str:
    """A new database copied from ``template``, which ``build(url)`` fills the first time on this server.

    ``build`` must close its connections: PostgreSQL copies only a database nobody is using. Under
    `make mutation` every mutant reruns the same tests on one shared server, and the copy replaces
    their migrations, ingestion and embedding; a mutant's own run never saves a template, so every
    template holds what the unmutated code built.
    """
    admin_url = with_database(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (template,))  # one builder per template
        try:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone() is None:
                building = create_database(server_url)
                build(building)
                if "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
                    return building
                rename = sql.SQL("ALTER DATABASE {} RENAME TO {}")
                conn.execute(rename.format(sql.Identifier(urlsplit(building).path[1:]), sql.Identifier(template)))
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (template,))
        return create_database(server_url, template=template)


def _migrated(url: str) -> None:
    Database(url).migrate()


# Named by the migrations' content: a server shared across runs never serves an older schema.
MIGRATED_TEMPLATE = (
    "sage_tpl_migrated_"
    + sha256(
        b"".join(
            p.read_bytes() for p in sorted((Path(sage_platform.__file__).parent / "db" / "migrations").rglob("*.py"))
        )
    ).hexdigest()[:12]
)


@pytest.fixture
def database_url(pg_server: str) -> str:
    """A fresh, empty database."""
    return create_database(pg_server)


@pytest.fixture
def migrated_database_url(pg_server: str) -> str:
    """A fresh database at the current schema (a copy of one migrated once per server)."""
    return cloned_database(pg_server, MIGRATED_TEMPLATE, _migrated)


def indexed_corpus_platform(server_url: str, root: Path, template: str) -> Platform:
    """A platform whose index holds the corpus in ``root / "corpus"``, built once per server as ``template``."""
    from sage_platform.pipeline import build_indexes
    from sage_platform.platform import Platform

    def settings(url: str, data: str) -> Settings:
        return Settings(database_url=url, data_dir=root / data, corpus_dir=root / "corpus")

    def build(url: str) -> None:
        platform = Platform(settings(url, "build"))
        try:
            build_indexes(platform)
        finally:
            platform.db.close()

    return Platform(settings(cloned_database(server_url, template, build), "data"))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, migrated_database_url: str) -> dict[str, str]:
    """SAGE_* environment for one test: its own database, data folder and corpus folder."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    values = {
        "SAGE_DATABASE_URL": migrated_database_url,
        "SAGE_DATA_DIR": str(tmp_path / "data"),
        "SAGE_CORPUS_DIR": str(corpus),
        "SAGE_EVAL_SET": str(tmp_path / "golden.jsonl"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings()


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database.from_settings(settings)
    yield database
    database.close()


def pubmedqa_items(count: int) -> list[tuple[str, dict]]:
    return list(json.loads(PUBMEDQA.read_text()).items())[:count]


def write_pubmedqa(corpus: Path, golden: Path, count: int, *, as_files: bool = False) -> list[str]:
    """The first ``count`` PubMedQA items: CONTEXTS as the corpus, LONG_ANSWER as the golden answer."""
    items = pubmedqa_items(count)
    if as_files:
        for pmid, item in items:
            (corpus / f"{pmid}.txt").write_text("\n\n".join(item["CONTEXTS"]))
    else:
        with (corpus / "pubmedqa.jsonl").open("w") as out:
            for pmid, item in items:
                out.write(json.dumps({"id": pmid, "text": "\n\n".join(item["CONTEXTS"])}) + "\n")
    with golden.open("w") as out:
        for pmid, item in items:
            relevant = [f"{pmid}.txt" if as_files else pmid]
            out.write(json.dumps({"id": pmid, "question": item["QUESTION"], "golden_answers": [item["LONG_ANSWER"]],
                                  "relevant_doc_ids": relevant, "label": item["final_decision"]}) + "\n")  # fmt: skip
    return [pmid for pmid, _ in items]


def indexed_platform(server_url: str, root: Path, count: int, metadata: dict | None = None, **overrides: object):  # type: ignore[no-untyped-def]
    """A platform on a fresh database whose index holds the first ``count`` PubMedQA abstracts."""
    from sage_platform.pipeline import build_indexes
    from sage_platform.platform import Platform

    corpus = root / "corpus"
    corpus.mkdir()
    with (corpus / "docs.jsonl").open("w") as out:
        for pmid, item in pubmedqa_items(count):
            record = {"id": pmid, "text": "\n\n".join(item["CONTEXTS"]), "metadata": metadata or {}}
            out.write(json.dumps(record) + "\n")
    settings = Settings(
        database_url=create_database(server_url), data_dir=root / "data", corpus_dir=corpus, **overrides
    )
    platform = Platform(settings)
    build_indexes(platform)
    return platform
