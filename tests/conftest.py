"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh database per test."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sage_platform.config import Settings
from sage_platform.db import Database, start_embedded_server, stop_embedded_server
from sage_platform.db.urls import with_database

# ../shared beside the repository (found from a copy of the tests too, such as mutmut's mutants/).
PUBMEDQA = next(
    (p / "shared" / "data" / "pubmedqa" / "pqal_dev.json" for p in Path(__file__).resolve().parents
     if (p / "shared" / "data" / "pubmedqa").is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa" / "pqal_dev.json",
)  # fmt: skip


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


def _close_cached_platforms() -> None:
    """Platforms cached by the Dagster resource hold read pools; a test's database goes with it."""
    from sage_platform import resources

    for platform in resources._PLATFORMS.values():
        if "db" in platform.__dict__:
            platform.db.close()
    resources._PLATFORMS.clear()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="sage-test-"))
    root.chmod(0o755)  # the server runs as its own system user when tests run as root
    url = start_embedded_server(root / "pg")
    yield url
    stop_embedded_server(root / "pg")
    shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


@pytest.fixture
def database_url(pg_server: str) -> str:
    return create_database(pg_server)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> dict[str, str]:
    """SAGE_* environment for one test: its own database, data folder and corpus folder."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    values = {
        "SAGE_DATABASE_URL": database_url,
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
