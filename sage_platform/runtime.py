"""Running the platform: Dagster's home, one materialization of the graph, and ``sage up``.

``sage up`` starts, in order: the embedded PostgreSQL, ``dagster dev`` (webserver and daemon), the warm
worker, the agent and memory servers, one materialization of the graph (in the worker); one Ctrl-C stops
them in reverse order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from sage_platform.config import Settings
from sage_platform.db import Database, dagster_storage_url, stop_embedded_server
from sage_platform.package_files import DAGSTER_YAML, WORKSPACE_YAML

RAG_JOB = "rag_job"
WORKER_ALREADY_RUNNING = 3  # `sage worker`'s exit code when another serves the data folder


def prepare_dagster_home(settings: Settings) -> Path:
    """Point Dagster at its Postgres storage; our dagster.yaml reads the URL from the environment."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DAGSTER_HOME"):
        target = home / "dagster.yaml"
        rendered = instance_yaml(settings)
        if not target.exists() or target.read_text() != rendered:
            target.write_text(rendered)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("SAGE_DAGSTER_PG_URL", dagster_storage_url(settings))
    os.environ.setdefault("SAGE_DAGSTER_COMPUTE_LOG_DIR", str(home / "compute_logs"))
    return home


def instance_yaml(settings: Settings) -> str:
    """The shipped dagster.yaml with this deployment's run limit (Dagster reads no variable there)."""
    import yaml

    config = yaml.safe_load(DAGSTER_YAML.read_text())
    config["concurrency"]["runs"]["max_concurrent_runs"] = settings.max_concurrent_runs
    header = f"# Written by sage from {DAGSTER_YAML.name}; edit that file or the SAGE_* settings instead.\n"
    return header + str(yaml.safe_dump(config, sort_keys=False))


def set_pool_limits(settings: Settings) -> dict[str, int]:
    """Pool limits from ``SAGE_POOL_LIMITS`` (e.g. ``llm=4,embedding=2,database=1``) into the instance."""
    from dagster import DagsterInstance

    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in settings.pool_limits.split(","))):
        pool, _, count = part.partition("=")
        if count == "auto":  # as many embedding shards at once as can run in parallel
            count = "1" if settings.dagster_executor == "in_process" else str(os.cpu_count() or 1)
        if not count.isdigit():
            raise ValueError(f"SAGE_POOL_LIMITS: {part!r} is not pool=count (or pool=auto)")
        limits[pool.strip()] = int(count)
    with DagsterInstance.get() as instance:
        for pool, slots in limits.items():
            instance.event_log_storage.set_concurrency_slots(pool, slots)
    return limits


def materialize_graph(
    settings: Settings, *, log_level: str = "INFO", job_name: str = RAG_JOB, assets: list[str] | None = None
) -> bool:
    """Run a job (``rag_job`` unless named) once, recorded in the Dagster instance: in this process, or
    with its steps in other processes when ``SAGE_DAGSTER_EXECUTOR`` says so. ``assets`` narrows the run
    to those assets of the job (with their checks)."""
    Database.from_settings(settings)  # start the server and migrate before Dagster connects
    prepare_dagster_home(settings)
    from dagster import AssetKey, DagsterInstance

    selection = [AssetKey(name) for name in assets] if assets else None
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if settings.dagster_executor == "in_process":
        from sage_platform.definitions import defs
        from sage_platform.kept_instance import kept_instance

        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=kept_instance(), raise_on_error=False, run_config=run_config, asset_selection=selection
        )
        return result.success
    # Other executors start steps in processes of their own, which rebuild the job from its module.
    from dagster import build_reconstructable_job, execute_job

    job = build_reconstructable_job("sage_platform.definitions", "job_named", reconstructable_args=(job_name,))
    with DagsterInstance.get() as instance, execute_job(job, instance, run_config=run_config,
                                                       asset_selection=selection) as executed:  # fmt: skip
        return executed.success


def materialize_via_worker(
    settings: Settings, *, log_level: str = "INFO", job_name: str = RAG_JOB, assets: list[str] | None = None,
    use_worker: bool = True,
) -> bool:  # fmt: skip
    """``materialize_graph`` in the warm worker of this data folder when one runs with the same settings
    and code (seconds), else in this process."""
    if use_worker:
        from sage_platform.worker.client import run_in_worker

        ran = run_in_worker(settings, job_name=job_name, assets=assets, log_level=log_level)
        if ran is not None:
            return ran
    return materialize_graph(settings, log_level=log_level, job_name=job_name, assets=assets)


def _wait_until(answers: Callable[[], bool], what: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving {what} exited with code {process.returncode}")
        if answers():
            return
        time.sleep(0.5)  # polling a server that is starting up; no event to wait on
    raise TimeoutError(f"nothing answered at {what} within {timeout:.0f}s")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    _wait_until(lambda: _http_ok(url), url, process, timeout)


class _ChildLogs:
    """Where each child's output goes: the terminal (verbose) or ``<folder>/<name>.log``, appended."""

    def __init__(self, folder: Path, verbose: bool) -> None:
        self.folder, self.verbose = folder, verbose
        self._files: list[Any] = []

    def for_child(self, name: str) -> dict[str, Any]:
        if self.verbose:
            return {}
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / f"{name}.log").open("ab")
        self._files.append(log)
        return {"stdout": log, "stderr": subprocess.STDOUT}

    def hint(self) -> str:
        return "" if self.verbose else f"; its log is in {self.folder}"

    def close(self) -> None:
        for log in self._files:
            log.close()


def _say(line: str) -> None:
    """A status line; a closed stdout (``sage up | tee`` whose tee died on Ctrl-C) must not stop the shutdown."""
    with contextlib.suppress(BrokenPipeError, OSError):
        print(line, flush=True)


def _reset_sigint() -> None:
    # `dagster dev` ignores SIGINT/SIGTERM for good if it starts with SIGINT ignored (nohup, `&`).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def up(settings: Settings, *, materialize: bool = True, verbose: bool = False) -> int:
    """Bring the platform up and keep it up until Ctrl-C (SIGINT) or SIGTERM.

    The children's own log lines (the daemon's sensor ticks come every few seconds) go to files
    under ``SAGE_DATA_DIR/logs`` so that the ``[sage]`` lines stay readable; ``verbose`` shows them.
    """
    stopping = False
    logs = _ChildLogs(settings.server_logs_dir, verbose)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    dagster: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    memory: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    url = f"http://{settings.dagster_host}:{settings.dagster_port}"
    agent_url = f"http://{settings.host}:{settings.port}"
    try:
        where = f"embedded PostgreSQL in {settings.pgdata_dir}" if settings.embedded_database else "SAGE_DATABASE_URL"
        _say(f"[sage] database: {where}")
        if not verbose:
            _say(f"[sage] logs of Dagster and the servers: {settings.server_logs_dir} (--verbose shows them here)")
        Database.from_settings(settings)
        prepare_dagster_home(settings)
        limits = set_pool_limits(settings)
        _say(f"[sage] pool limits: {limits}")
        command = [sys.executable, "-m", "dagster", "dev", "-w", str(WORKSPACE_YAML),
                   "-h", settings.dagster_host, "-p", str(settings.dagster_port)]  # fmt: skip
        _say(f"[sage] starting dagster dev on {url}")
        # Its own session: the terminal's Ctrl-C reaches us alone, and we stop children in order.
        dagster = subprocess.Popen(
            command, preexec_fn=_reset_sigint, start_new_session=True, **logs.for_child("dagster")
        )
        if settings.warm_worker:  # warms up while Dagster starts
            worker = subprocess.Popen([sys.executable, "-m", "sage_platform.cli", "worker"], preexec_fn=_reset_sigint,
                                      start_new_session=True, **logs.for_child("warm-worker"))  # fmt: skip
        _wait_for_http(f"{url}/server_info", dagster, timeout=180)
        _say(f"[sage] Dagster UI ready: {url}")
        agent = subprocess.Popen([sys.executable, "-m", "sage_platform.cli", "serve"], preexec_fn=_reset_sigint,
                                 start_new_session=True, **logs.for_child("agent-server"))  # fmt: skip
        _wait_for_http(f"{agent_url}/health", agent, timeout=120)
        _say(f"[sage] agent server ready: {agent_url} (chat page), API docs {agent_url}/docs")
        memory_url = f"http://{settings.mcp_host}:{settings.mcp_port}"
        memory = subprocess.Popen([sys.executable, "-m", "sage_platform.cli", "mcp"], preexec_fn=_reset_sigint,
                                  start_new_session=True, **logs.for_child("memory-server"))  # fmt: skip
        _wait_for_http(f"{memory_url}/health", memory, timeout=120)
        hint = "" if settings.mcp_tokens else " (create a token: sage mcp token create --user NAME)"
        _say(f"[sage] memory server ready: {memory_url}/mcp{hint}")
        if worker is not None:
            from sage_platform.worker.client import ping

            running = worker
            try:
                _wait_until(lambda: ping(settings) == running.pid, "the warm worker", worker, timeout=300)
                _say("[sage] warm worker ready: `sage materialize` runs in it")
            except RuntimeError:
                if worker.returncode != WORKER_ALREADY_RUNNING:
                    raise
                worker = None  # a `sage worker` started earlier serves this data folder: runs go to it
                _say("[sage] warm worker: the one already serving this data folder")
        if materialize:
            _say("[sage] materializing the asset graph once")
            ok = materialize_via_worker(settings, log_level="INFO" if verbose else "WARNING")
            _say(f"[sage] materialization {'succeeded' if ok else 'FAILED (see the run in the UI)'}")
        _say(f"[sage] asset graph:  {url}/asset-groups")
        _say(f"[sage] runs:         {url}/runs")
        _say(f"[sage] report:       {settings.reports_dir / 'evaluation.json'}")
        _say("[sage] up. Press Ctrl-C to stop.")
        children = {"dagster dev": dagster, "the agent server": agent, "the memory server": memory}
        if worker is not None:
            children["the warm worker"] = worker
        while all(child.poll() is None for child in children.values()):
            time.sleep(1)  # idle loop until a signal arrives; the handler interrupts it
        name, exited = next((n, c) for n, c in children.items() if c.poll() is not None)
        _say(f"[sage] {name} exited with code {exited.returncode}{logs.hint()}")
        return exited.returncode or 1
    except KeyboardInterrupt:
        if not stopping:
            raise
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        for label, child in (("the memory server", memory), ("the agent server", agent)):
            if child is not None:
                _say(f"[sage] stopping {label}")
                _stop(child)
        if worker is not None:
            _say("[sage] stopping the warm worker")
            _stop(worker)
        if dagster is not None:
            _say("[sage] stopping dagster dev")
            _stop(dagster)
        if settings.embedded_database:
            _say("[sage] stopping embedded PostgreSQL")
            stop_embedded_server(settings.pgdata_dir)
        logs.close()
        _say("[sage] stopped")
