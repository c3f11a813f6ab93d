"""`sage up` end to end: embedded Postgres, dagster dev, one materialization, one Ctrl-C stops all."""

import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from tests._children import Child


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gone(pid: int, timeout: float) -> bool:
    """The process has exited (a zombie nobody reaps counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)  # polling another session's process; there is no event to wait on
    return False


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def test_up_serves_the_materialized_graph_and_stops_on_one_ctrl_c(tmp_path: Path) -> None:
    port, agent_port, memory_port = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "SAGE_DATA_DIR": str(tmp_path / "data"), "SAGE_DAGSTER_PORT": str(port),
           "SAGE_PORT": str(agent_port), "SAGE_MCP_PORT": str(memory_port)}  # fmt: skip
    child = Child([sys.executable, "-m", "sage_platform.cli", "up"], env=env, name="sage up")
    try:
        # Generous for a cold machine (model load, first materialization); a dead `sage up` fails at once.
        child.wait_for_line(lambda line: line.startswith("[sage] up.") or "FAILED" in line, timeout=420,
                            what="'[sage] up.'")  # fmt: skip
        text = child.text()
        assert "FAILED" not in text, child.tail(80)
        assert f"Dagster UI ready: http://127.0.0.1:{port}" in text
        assert "materialization succeeded" in text
        assert "[sage] warm worker ready" in text and "[sage] running in the warm worker" in text
        assert f"agent server ready: http://127.0.0.1:{agent_port}" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{agent_port}/health", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
        assert f"memory server ready: http://127.0.0.1:{memory_port}/mcp" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{memory_port}/health", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{agent_port}/", timeout=10) as response:
            assert b"<title>Sage chat</title>" in response.read()

        runs = _graphql(port, "{ runsOrError { ... on Runs { results { jobName status } } } }")
        assert {"jobName": "rag_job", "status": "SUCCESS"} in runs["runsOrError"]["results"]
        assets = _graphql(port, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
        assert {tuple(a["assetKey"]["path"]) for a in assets if a["groupName"] == "rag"} == {
            ("raw_documents",), ("document_chunks",), ("chunk_embeddings",), ("pgvector_index",), ("es_index",),
            ("eval_questions",), ("rag_answers",), ("evaluation_report",),
        }  # fmt: skip
        report = json.loads((tmp_path / "data" / "reports" / "evaluation.json").read_text())
        # The shipped golden set over the five shipped docs: chance would put the right one first 1 time in 5.
        assert report["settings"]["questions"] == 30 and report["recall@1"] >= 0.8, report["recall@1"]

        children = psutil.Process(child.pid).children(recursive=True)
        assert any("dagster" in " ".join(c.cmdline()) for c in children)
        assert any("serve" in c.cmdline() for c in children)
        assert any("mcp" in c.cmdline() for c in children)
        assert any("worker" in c.cmdline() for c in children)
        postgres_pid = int((tmp_path / "data" / "pg" / "postmaster.pid").read_text().split()[0])
    finally:
        child.signal(signal.SIGINT)
        code = child.wait(timeout=120)
    assert code == 0, child.tail()
    assert "[sage] stopped" in child.text()
    assert not (tmp_path / "data" / "pg" / "postmaster.pid").exists()
    assert _gone(postgres_pid, timeout=30)
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.cmdline() for p in alive]


def test_up_hands_runs_to_a_warm_worker_already_serving_its_data_folder(tmp_path: Path) -> None:
    port, agent_port, memory_port = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "SAGE_DATA_DIR": str(tmp_path / "data"), "SAGE_DAGSTER_PORT": str(port),
           "SAGE_PORT": str(agent_port), "SAGE_MCP_PORT": str(memory_port)}  # fmt: skip
    with Child([sys.executable, "-m", "sage_platform.cli", "worker"], env=env, name="sage worker") as worker:
        worker.wait_for_line(lambda line: "ready on" in line, timeout=300, what="'ready on'")
        child = Child([sys.executable, "-m", "sage_platform.cli", "up"], env=env, name="sage up")
        try:
            child.wait_for_line(lambda line: line.startswith("[sage] up.") or "FAILED" in line, timeout=420,
                                what="'[sage] up.'")  # fmt: skip
            text = child.text()
            assert "[sage] warm worker: the one already serving this data folder" in text, child.tail(80)
            assert f"[sage] running in the warm worker (pid {worker.pid})" in text
            assert "materialization succeeded" in text
        finally:
            child.signal(signal.SIGINT)
            code = child.wait(timeout=120)
        assert code == 0, child.tail()
        assert worker.process.poll() is None  # not sage up's to stop
