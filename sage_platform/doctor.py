"""``sage doctor``: check each part the platform needs and give a clear verdict for each.

Usage::

    checks = run_checks(Settings())
    all(check.verdict != FAIL for check in checks)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from sage_platform.config import Settings

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
    detail: str


def _python(settings: Settings) -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    good = sys.version_info >= (3, 11)
    return Check("python", OK if good else FAIL, f"Python {version}" + ("" if good else ", need 3.11 or newer"))


def _dagster(settings: Settings) -> Check:
    from sage_platform.dependencies import DAGSTER_FAMILY, dagster_family_problems, installed_versions

    versions = installed_versions(DAGSTER_FAMILY)
    problems = dagster_family_problems(versions)
    if problems:
        return Check("dagster", FAIL, "; ".join(problems) + " (reinstall from the lock: make install)")
    return Check("dagster", OK, f"dagster {versions['dagster']} with dagster-postgres {versions['dagster-postgres']}")


def _database(settings: Settings) -> Check:
    from sage_platform.db import Database

    db = Database.from_settings(settings)
    with db.connect() as conn:
        row = conn.execute("SELECT current_setting('server_version'), current_database()").fetchone()
    where = f"embedded in {settings.pgdata_dir}" if settings.embedded_database else "SAGE_DATABASE_URL"
    return Check("database", OK, f"PostgreSQL {row[0] if row else '?'}, database {row[1] if row else '?'} ({where})")


def _pgvector(settings: Settings) -> Check:
    from sage_platform.db import Database

    with Database.from_settings(settings, migrate=False).connect() as conn:
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        if not row:
            return Check("pgvector", FAIL, "the vector extension is not installed in the database")
        # Orthogonal vectors are at cosine distance 1, opposite ones at 2: the operator must say so.
        distances = conn.execute(
            "SELECT '[1,0]'::vector <=> '[0,1]'::vector, '[1,0]'::vector <=> '[-2,0]'::vector"
        ).fetchone()
        hnsw = conn.execute("SELECT 1 FROM pg_am WHERE amname = 'hnsw'").fetchone()
    if not hnsw:
        return Check("pgvector", FAIL, f"pgvector {row[0]} lacks the hnsw access method")
    if distances is None or [round(float(d), 6) for d in distances] != [1.0, 2.0]:
        return Check("pgvector", FAIL, f"pgvector {row[0]}: cosine distance gave {distances}, expected (1, 2)")
    return Check("pgvector", OK, f"pgvector {row[0]}, HNSW available, cosine distance checked (1 and 2)")


def _embedder(settings: Settings) -> Check:
    from sage_platform.embeddings import embedder_from_settings

    embedder = embedder_from_settings(settings)
    vector = embedder.embed(["sage doctor"])
    where = settings.embedding_base_url or "local, offline"
    return Check("embedder", OK, f"{embedder.model_name} ({where}): {vector.shape[1]} dimensions")


def _llm(settings: Settings) -> Check:
    if not settings.llm_configured:
        missing = [name for name, value in (("SAGE_DEFAULT_LLM_MODEL_NAME", settings.default_llm_model_name),
                   ("SAGE_DEFAULT_LLM_API_BASE_URL or _API_KEY",
                    settings.default_llm_api_base_url or settings.default_llm_api_key)) if not value]  # fmt: skip
        return Check("llm", WARN, f"not configured ({', '.join(missing)} unset): answers are extractive")
    from openai import OpenAI

    key = settings.default_llm_api_key.get_secret_value() if settings.default_llm_api_key else "unused"
    client = OpenAI(base_url=settings.default_llm_api_base_url, api_key=key, max_retries=0, timeout=10)
    response = client.chat.completions.create(
        model=settings.default_llm_model_name or "",
        messages=[{"role": "user", "content": "ping"}],
        max_tokens=1,
    )
    return Check("llm", OK, f"{settings.default_llm_model_name} answered (id {response.id})")


def _backups(settings: Settings) -> Check:
    """The pg_dump that matches the server, and the backup storage (the folder, or the S3 bucket) readable."""
    from sage_platform.db import Database
    from sage_platform.db.urls import libpq_url
    from sage_platform.ops.pgtools import pg_tool
    from sage_platform.ops.storage import backup_storage

    dump = pg_tool("pg_dump", libpq_url(Database.from_settings(settings, migrate=False).url))
    storage = backup_storage(settings)
    count = len(storage.backups())
    return Check("backups", OK, f"{count} kept in {storage.description}; {dump}")


CHECKS: list[tuple[str, Callable[[Settings], Check]]] = [
    ("python", _python),
    ("dagster", _dagster),
    ("database", _database),
    ("pgvector", _pgvector),
    ("embedder", _embedder),
    ("llm", _llm),
    ("backups", _backups),
]


def run_checks(settings: Settings) -> list[Check]:
    results = []
    for name, check in CHECKS:
        try:
            results.append(check(settings))
        except Exception as error:  # a doctor reports every failure instead of stopping at the first
            results.append(Check(name, FAIL, f"{type(error).__name__}: {error}"))
    return results
