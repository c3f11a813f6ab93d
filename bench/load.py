"""Load benchmark of the agent server: the seed's test load (600 requests at 60 QPS), then ten times its rate.

A stub LLM streaming 20 tokens (bench/llm_stub_server.py, own process), the agent server
(`sage serve`, own process, sessions in the embedded PostgreSQL), and an open-loop aiohttp load
generator here: request i is sent at t0 + i/QPS whatever the earlier ones are doing. For each
phase it prints the success rate (HTTP 200, no `error` line anywhere in the stream, and a last line
`stream_end` with `saved` true),
achieved QPS, and p50/p99 time to first byte and to stream_end.

    .venv/bin/python bench/load.py [--phases 600@60,36000@600] [--tokens 20] [--modes simple,multi,team]

With ``--modes``, every phase runs once per agent mode (``multi``: a two-step plan; ``team``: a lead
delegating to two sub-agents at once), and reports the model calls each request made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)  # polling a starting server
    raise TimeoutError(url)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] * 1000, 1) if values else 0.0


class StreamError(RuntimeError):
    """A stream that carried an error line, or did not end with a saved ``stream_end``."""


MODE_FIELDS = {
    "simple": {},
    "multi": {"agent_mode": "multi"},
    "team": {"agent_mode": "team", "custom_sub_agents": [
        {"name": "alpha", "description": "Looks up part one.", "tools": []},
        {"name": "beta", "description": "Looks up part two.", "tools": []}]},
}  # fmt: skip


async def one(session: aiohttp.ClientSession, url: str, i: int, out: dict, mode: str = "simple") -> None:
    body = {"messages": [{"role": "user", "content": f"question {i}: what does Sage do?"}], "user_id": f"u{i % 50}",
            **MODE_FIELDS[mode]}  # fmt: skip
    began = time.perf_counter()
    first = None
    try:
        async with session.post(url, json=body) as response:
            if response.status != 200:
                out["errors"][f"HTTP {response.status}"] = out["errors"].get(f"HTTP {response.status}", 0) + 1
                return
            message: dict = {}
            async for line in response.content:
                if first is None:
                    first = time.perf_counter() - began
                if not line.strip():
                    continue
                message = json.loads(line)  # every line is read: an error anywhere fails the request
                if message.get("type") == "error" or (message.get("type") == "stream_end" and message.get("error")):
                    raise StreamError(str(message.get("content") or message.get("error"))[:60])
            if message.get("type") != "stream_end" or not message.get("saved", True):
                raise StreamError(f"stream ended with {message.get('type')}")
    except Exception as error:
        key = type(error).__name__
        out["errors"][key] = out["errors"].get(key, 0) + 1
        return
    out["ttfb"].append(first or 0.0)
    out["total"].append(time.perf_counter() - began)


def llm_calls(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:
        return int(json.loads(response.read())["answered"])


def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    out = {}
    for name, group in processes.items():
        total = 0.0
        for process in group:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        out[name] = total
    return out


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return []
    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


async def phase(url: str, requests: int, qps: float, mode: str = "simple") -> dict:
    out: dict = {"ttfb": [], "total": [], "errors": {}}
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter()
        tasks = []
        for i in range(requests):
            delay = t0 + i / qps - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the open-loop schedule itself
            tasks.append(asyncio.create_task(one(session, url, i, out, mode)))
        sent = time.perf_counter() - t0
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    ok = len(out["total"])
    return {
        "requests": requests, "target_qps": qps, "send_seconds": round(sent, 2),
        "achieved_qps": round(ok / elapsed, 1), "success_rate": round(ok / requests, 4), "errors": out["errors"],
        "ttfb_p50_ms": pct(out["ttfb"], 50), "ttfb_p99_ms": pct(out["ttfb"], 99),
        "end_p50_ms": pct(out["total"], 50), "end_p99_ms": pct(out["total"], 99),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="600@60,36000@600", help="REQUESTS@QPS, comma-separated")
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--db-type", default="postgres", choices=["postgres", "file", "memory"])
    parser.add_argument("--modes", default="simple", help="agent modes, comma-separated: simple,multi,team")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sage-bench-load-"))
    work.chmod(0o755)
    stub_port, server_port = free_port(), free_port()
    stub = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "llm_stub_server.py"), str(stub_port), str(args.tokens)]
    )
    env = {**os.environ, "SAGE_DATA_DIR": str(work), "SAGE_PORT": str(server_port),
           "SAGE_DEFAULT_LLM_MODEL_NAME": "stub", "SAGE_DEFAULT_LLM_API_BASE_URL": f"http://127.0.0.1:{stub_port}/v1",
           "SAGE_DB_TYPE": args.db_type}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "sage_platform.cli", "serve"], env=env, start_new_session=True)
    results: dict = {"tokens_per_answer": args.tokens, "db_type": args.db_type, "cores": os.cpu_count()}
    try:
        wait_http(f"http://127.0.0.1:{server_port}/health", server)
        url = f"http://127.0.0.1:{server_port}/api/stream"
        modes = args.modes.split(",")
        for mode in modes:
            asyncio.run(phase(url, 50, 25, mode))  # warm-up: connections, caches, first queries
        for spec in args.phases.split(","):
            for mode in modes:
                count, qps = spec.split("@")
                processes = {"server": [psutil.Process(server.pid)], "llm_stub": [psutil.Process(stub.pid)],
                             "load_generator": [psutil.Process()], "postgres": postgres_processes(work / "pg")}  # fmt: skip
                before, answered = cpu_seconds(processes), llm_calls(stub_port)
                result = asyncio.run(phase(url, int(count), float(qps), mode))
                after = cpu_seconds(processes)
                result["llm_calls_per_request"] = round((llm_calls(stub_port) - answered) / int(count), 2)
                # CPU per request and process: what 600 QPS would need from 2 cores.
                result["cpu_ms_per_request"] = {k: round((after[k] - before[k]) * 1000 / int(count), 2) for k in after}
                result["cpu_ms_per_request"]["total"] = round(sum(result["cpu_ms_per_request"].values()), 2)
                key = spec if modes == ["simple"] else f"{mode}:{spec}"
                results[key] = result
                print(json.dumps({key: result}), flush=True)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(60)
        stub.terminate()
        stub.wait(10)
        from sage_platform.db import stop_embedded_server

        stop_embedded_server(work / "pg")
    from bench._results import save_results

    save_results("load", results)


if __name__ == "__main__":
    main()
