"""The warm worker: a real ``sage worker`` process, real ``sage materialize`` clients, one database."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sage_platform.config import Settings
from sage_platform.worker.client import ping, run_in_worker
from sage_platform.worker.protocol import code_stamp, settings_digests, socket_path
from tests._children import Child
from tests.conftest import write_pubmedqa

SAGE = [sys.executable, "-m", "sage_platform.cli"]


@pytest.fixture
def worker_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # Dagster's storage in the test's own database (as the other CLI tests do).
    monkeypatch.setenv("SAGE_DAGSTER_DATABASE_URL", env["SAGE_DATABASE_URL"])
    settings = Settings()
    write_pubmedqa(settings.corpus_dir, settings.eval_set, 6, as_files=True)
    return dict(os.environ)


@pytest.fixture
def settings(worker_env: dict[str, str]) -> Settings:
    return Settings()  # with the worker's Dagster storage


def _as_if_started_with_ampersand() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `sage worker &` and nohup hand it


@pytest.fixture
def worker(worker_env: dict[str, str]) -> Iterator[Child]:
    with Child(
        [*SAGE, "worker"], env=worker_env, name="sage worker", preexec_fn=_as_if_started_with_ampersand
    ) as child:
        child.wait_for_line(lambda line: "ready on" in line, timeout=300, what="'ready on'")
        yield child


def test_a_signal_mid_run_interrupts_the_run_then_stops_the_worker(worker_env: dict[str, str]) -> None:
    # A Ctrl-C lands while the model embeds.
    env = {**worker_env, "SAGE_CRASH_AT": "chunk_embeddings.batch:1:INT"}
    with Child([*SAGE, "worker"], env=env, name="sage worker", preexec_fn=_as_if_started_with_ampersand) as child:
        child.wait_for_line(lambda line: "ready on" in line, timeout=300, what="'ready on'")
        interrupted = _materialize(worker_env, "--log-level", "ERROR")
        assert child.wait(timeout=120) == 0
    assert interrupted.returncode == 1 and "materialization FAILED" in interrupted.stderr
    assert "running in the warm worker" in interrupted.stderr
    assert "run of rag_job failed" in child.text() and "stopping (a signal came during the last run)" in child.text()


def test_a_worker_killed_mid_run_fails_the_run_it_held(worker_env: dict[str, str], settings: Settings) -> None:
    env = {**worker_env, "SAGE_CRASH_AT": "chunk_embeddings.batch:1"}
    with Child([*SAGE, "worker"], env=env, name="sage worker") as child:
        child.wait_for_line(lambda line: "ready on" in line, timeout=300, what="'ready on'")
        lost = _materialize(worker_env, "--log-level", "ERROR")
        assert child.wait(timeout=60) == -signal.SIGKILL
    assert lost.returncode == 1
    assert "the warm worker stopped before the run ended" in lost.stderr and "materialization FAILED" in lost.stderr
    assert ping(settings) is None  # its socket is left behind, and nothing answers there


def _materialize(env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SAGE, "materialize", *flags], env=env, capture_output=True, text=True, timeout=600)


def _chunks_containing(url: str, text: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM chunk_index WHERE text LIKE %s", (f"%{text}%",)).fetchone()
    assert row is not None
    return int(row[0])


def _ask(path: Path, message: dict[str, object]) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as connection, connection.makefile("rb") as reader:
        connection.connect(str(path))
        assert "hello" in json.loads(reader.readline())
        connection.sendall(json.dumps(message).encode() + b"\n")
        answer = json.loads(reader.readline())
    assert isinstance(answer, dict)
    return answer


def test_materialize_runs_in_the_worker_and_sees_each_edit(
    worker: Child, worker_env: dict[str, str], settings: Settings
) -> None:
    first = _materialize(worker_env, "--log-level", "INFO")
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"[sage] running in the warm worker (pid {worker.pid})" in first.stderr
    assert "rag_job" in first.stderr and " - pgvector_index - " in first.stderr  # its log lines, forwarded
    assert "materialization succeeded" in first.stderr
    assert settings.database_url
    edited = sorted(settings.corpus_dir.iterdir())[2]
    edited.write_text(edited.read_text() + "\n\nA sentence only the warm worker can have indexed: quokka.")

    second = _materialize(worker_env, "--log-level", "WARNING")
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"running in the warm worker (pid {worker.pid})" in second.stderr
    assert " - INFO - " not in second.stderr  # the client's level, not the worker's
    assert _chunks_containing(settings.database_url, "quokka") == 1


def test_a_failing_run_is_reported_and_the_worker_serves_the_next(
    worker: Child, worker_env: dict[str, str], settings: Settings
) -> None:
    failed = _materialize(worker_env, "--select", "no_such_asset")
    assert failed.returncode == 1
    assert "the run failed in the warm worker" in failed.stderr and "no_such_asset" in failed.stderr
    assert "materialization FAILED" in failed.stderr
    worker.wait_for_line(lambda line: "run of rag_job failed (DagsterInvalidSubsetError" in line, timeout=60)

    # A client that goes away mid-run does not stop the run, nor the worker.
    request = {"run": {"job": "rag_job", "assets": ["eval_questions"], "log_level": "INFO"},
               "settings": settings_digests(settings), "code": code_stamp()}  # fmt: skip
    with socket.socket(socket.AF_UNIX) as connection, connection.makefile("rb") as reader:
        connection.connect(str(socket_path(settings)))
        assert json.loads(reader.readline()) == {"hello": worker.pid}
        connection.sendall(json.dumps(request).encode() + b"\n")
        assert json.loads(reader.readline()) == {"accepted": worker.pid}
    ended = worker.wait_for_line(lambda line: "run of rag_job" in line, timeout=120, what="the run's end")
    assert "succeeded" in ended, worker.tail()
    assert ping(settings) == worker.pid


def test_the_worker_refuses_runs_it_would_run_differently(worker: Child, settings: Settings) -> None:
    other = settings.model_copy(update={"chunk_size": settings.chunk_size + 100})
    said: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            said.append(text)

        def flush(self) -> None:
            pass

    assert run_in_worker(other, job_name="rag_job", assets=None, log_level="INFO", out=Lines()) is None  # type: ignore[arg-type]
    assert "it was started with other settings (chunk_size); running here" in "".join(said)

    path = socket_path(settings)
    request = {"run": {"job": "rag_job", "assets": None, "log_level": "INFO"}, "settings": settings_digests(settings)}
    assert "code changed" in str(_ask(path, {**request, "code": "older"})["refused"])
    loud = {**request, "code": code_stamp(), "run": {"job": "rag_job", "assets": None, "log_level": "LOUD"}}
    assert "log_level must be one of" in str(_ask(path, loud)["refused"])
    assert "list of asset names" in str(_ask(path, {**loud, "run": {"job": "rag_job", "assets": "x"}})["refused"])
    assert ping(settings) == worker.pid


def test_a_busy_worker_is_not_waited_for_and_runs_nothing_it_was_not_asked(
    worker: Child, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket(socket.AF_UNIX) as holder, holder.makefile("rb") as reader:
        holder.connect(str(socket_path(settings)))  # greeted, then silent: the worker waits on it
        assert json.loads(reader.readline()) == {"hello": worker.pid}
        assert run_in_worker(settings, job_name="rag_job", assets=None, log_level="INFO") is None
        assert "the warm worker is busy with another run; running here" in capsys.readouterr().err
    assert ping(settings) == worker.pid  # served after the holder: the run given up on was never sent
    assert "run of" not in worker.text(), worker.tail()


def test_only_its_user_reaches_it_and_one_serves_a_data_folder(
    worker: Child, worker_env: dict[str, str], settings: Settings
) -> None:
    path = socket_path(settings)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600
    if os.getuid() == 0 and Path("/usr/bin/python3").exists():  # another user, for real (the venv is root's)
        probe = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])"
        other = subprocess.run(["/usr/bin/python3", "-c", probe, str(path)], user=65534, capture_output=True,
                               text=True, timeout=60)  # fmt: skip
        assert other.returncode != 0 and "PermissionError" in other.stderr

    second = subprocess.run([*SAGE, "worker"], env=worker_env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 3 and "a warm worker already serves this data folder" in second.stderr
    assert ping(settings) == worker.pid


def test_sigint_stops_it_and_materialize_then_runs_here(
    worker: Child, worker_env: dict[str, str], settings: Settings
) -> None:
    worker.signal(signal.SIGINT)
    assert worker.wait(timeout=120) == 0
    assert "[sage worker] stopping" in worker.text()
    assert not socket_path(settings).exists() and ping(settings) is None

    here = _materialize(worker_env, "--select", "eval_questions", "--log-level", "ERROR")
    assert here.returncode == 0, here.stderr[-3000:]
    assert "warm worker" not in here.stderr
