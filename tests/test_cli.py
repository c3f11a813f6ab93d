"""The `sage` command: help, report, doctor and materialize, against the real database."""

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psycopg
import pytest

from sage_platform.cli import main
from sage_platform.config import Settings
from tests.graph import run_graph


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("up", "materialize", "report", "doctor"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["materialize", "--help"])
    assert "SAGE_CHUNK_SIZE" in capsys.readouterr().out


def test_report_without_an_evaluation_says_what_to_do(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == 1
    assert "run `sage materialize` first" in capsys.readouterr().err


def test_report_prints_the_last_evaluation(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import write_pubmedqa

    write_pubmedqa(settings.corpus_dir, settings.eval_set, 12)
    assert run_graph().success
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    for metric in ("bleu", "rougeL", "exact_match", "f1", "recall@5", "mrr@10"):
        assert metric in out
    assert main(["report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads((settings.reports_dir / "evaluation.json").read_text())  # the last one, whole
    assert report["settings"]["questions"] == 12
    for metric in ("bleu", "rougeL", "f1", "recall@5", "mrr@10"):  # the table shows the report's own values
        assert f"  {metric:<12} {report[metric]:10.4f}\n" in out, metric


def test_doctor_gives_a_verdict_for_each_part(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "[OK  ] database  PostgreSQL 18" in out
    assert "[OK  ] pgvector  pgvector 0.8.5, HNSW available, cosine distance checked (1 and 2)" in out
    family = f"dagster {metadata.version('dagster')} with dagster-postgres {metadata.version('dagster-postgres')}"
    assert f"[OK  ] dagster   {family}" in out
    assert "[OK  ] embedder  sentence-transformers/all-MiniLM-L6-v2 (local, offline): 384 dimensions" in out
    assert "[WARN] llm       not configured" in out
    assert re.search(r"\[OK  \] backups   0 kept in \S+/backups; \S+/pg_dump\n", out)
    assert out.rstrip().endswith("verdict: ready")


def test_doctor_prints_settings_with_secrets_masked(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAGE_DEFAULT_LLM_API_KEY", "sk-never-printed")
    main(["doctor", "--settings", "--chunk-size", "150"])
    out = capsys.readouterr().out
    shown = json.loads(out[: out.index("\n}") + 2])
    assert shown["chunk_size"] == 150 and shown["default_llm_api_key"] == "***"
    assert "sk-never-printed" not in out


def test_doctor_fails_clearly_on_an_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAGE_DATABASE_URL", "postgresql://nobody:secret-pw@127.0.0.1:9/none?connect_timeout=2")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] database" in out and "verdict: FAIL (database, pgvector, backups)" in out
    assert "secret-pw" not in out


def test_materialize_exits_non_zero_when_an_asset_fails(env: dict[str, str], settings: Settings) -> None:
    (settings.corpus_dir / "a.md").write_text("some text")
    settings.eval_set.write_text("{not json\n")
    import os

    result = subprocess.run(
        [sys.executable, "-m", "sage_platform.cli", "materialize", "--log-level", "ERROR"],
        env={**os.environ, **env, "SAGE_DAGSTER_DATABASE_URL": env["SAGE_DATABASE_URL"]},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    assert "materialization FAILED" in result.stderr
    assert "line 1: invalid JSON" in result.stderr


def test_search_prints_ranked_hits_and_json(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import write_pubmedqa

    write_pubmedqa(settings.corpus_dir, settings.eval_set, 12)
    assert run_graph().success
    question = json.loads(settings.eval_set.read_text().splitlines()[3])
    assert main(["search", question["question"], "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[0] == "1"
    assert question["relevant_doc_ids"][0] in {line.split()[2] for line in lines}
    assert (
        main(
            ["search", "patients", "--retriever", "sparse", "-k", "2", "--json", "--filter", f"doc_id={question['id']}"]
        )
        == 0
    )
    hits = json.loads(capsys.readouterr().out)
    assert [h["rank"] for h in hits] == [1, 2][: len(hits)] and all(h["doc_id"] == question["id"] for h in hits)
    assert main(["search", "x", "--filter", "colour=red"]) == 1
    assert "unknown filter key 'colour'" in capsys.readouterr().err
    assert main(["search", "x", "--filter", "no-equals-sign"]) == 1
    assert "a filter is key=value" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "x", "--retriever", "bm42"])
    assert "invalid choice: 'bm42'" in capsys.readouterr().err
    assert main(["index", "status"]) == 0
    assert "pgvector      v1    live" in capsys.readouterr().out


def test_an_unknown_retriever_setting_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGE_RETRIEVER", "bm42")
    with pytest.raises(ValueError, match="unknown retriever 'bm42'; valid: dense, sparse, hybrid, elasticsearch"):
        Settings()


def _sage(args: list[str], data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGE_", "PG"))}
    return subprocess.run([sys.executable, "-m", "sage_platform.cli", *args], env={**env, "SAGE_DATA_DIR": str(data)},
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_a_command_stops_the_embedded_server_it_started_and_no_other(tmp_path: Path) -> None:
    from sage_platform.db.embedded import embedded_server_running, start_embedded_server, stop_embedded_server

    pgdata = tmp_path / "data" / "pg"
    listed = _sage(["keys", "list"], tmp_path / "data")
    assert listed.returncode == 0, listed.stderr
    assert pgdata.exists() and not embedded_server_running(pgdata)  # started for the command, stopped after it

    start_embedded_server(pgdata)  # running before the command: someone else's
    try:
        assert _sage(["keys", "list"], tmp_path / "data").returncode == 0
        assert embedded_server_running(pgdata)
    finally:
        stop_embedded_server(pgdata)


def test_a_started_server_another_process_uses_keeps_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sage_platform.db.embedded import (
        embedded_server_running,
        own_application_name,
        release_started_servers,
        start_embedded_server,
        started_servers,
        stop_embedded_server,
    )

    monkeypatch.setenv("PGAPPNAME", own_application_name())
    pgdata = tmp_path / "pg"
    others = started_servers()  # the suite's own server, if this process started it: not ours to stop
    url = start_embedded_server(pgdata)  # started by this process
    holder = subprocess.Popen(
        [sys.executable, "-c", "import psycopg, sys; c = psycopg.connect(sys.argv[1]); print('connected', flush=True);"
         " sys.stdin.read()", url],
        env={k: v for k, v in os.environ.items() if k != "PGAPPNAME"}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "connected"
        with psycopg.connect(url):  # a connection of our own does not count
            assert release_started_servers(others) == []
        assert embedded_server_running(pgdata)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()  # type: ignore[union-attr]
        stop_embedded_server(pgdata)
    url = start_embedded_server(pgdata)  # started again; now only this process is connected
    with psycopg.connect(url):
        assert release_started_servers(others) == [pgdata.resolve()]
    assert not embedded_server_running(pgdata)
