"""Load benchmark of the agent server: the seed's test load (600 requests at 60 QPS), then ten times its rate.

A stub LLM streaming 20 tokens (bench/llm_stub_server.py, own process), the agent server
(`sage serve`, own process, sessions in the embedded PostgreSQL), and an open-loop aiohttp load
generator here: request i is sent at t0 + i/QPS whatever the earlier ones are doing. For each
phase it prints the success rate (HTTP 200, no `error` line anywhere in the stream, and a last line
`stream_end` with `saved` true),
achieved QPS, and p50/p99 time to first byte and to stream_end.

    .venv/bin/python bench/load.py [--phases 600@60,6000@600] [--tokens 20] [--modes simple,multi,team]
                                   [--workers 1,2] [--overload 2] [--profile FILE]

With ``--modes``, every phase runs once per agent mode (``multi``: a two-step plan; ``team``: a lead
delegating to two sub-agents at once), and reports the model calls each request made. ``--workers
1,2`` measures the same phases against ``sage serve --workers 1`` then ``--workers 2`` and reports
their ratio. ``--overload 2`` adds a phase at twice the best throughput reached: the accepted
requests' latency, and how fast the rest got ``503`` with ``Retry-After``. ``--profile FILE`` samples
the server with py-spy during the first phase and prints where its CPU went.
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
            if response.status == 503 and "Retry-After" in response.headers:
                out["refused"].append(time.perf_counter() - began)  # turned away on arrival, as asked
                return
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
    out["last_done"] = max(out.get("last_done", 0.0), time.perf_counter())


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
    out: dict = {"ttfb": [], "total": [], "errors": {}, "refused": []}
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
        "achieved_qps": round(ok / max(out.get("last_done", t0 + elapsed) - t0, 1e-9), 1), "success_rate": round(ok / requests, 4), "errors": out["errors"],
        "ttfb_p50_ms": pct(out["ttfb"], 50), "ttfb_p99_ms": pct(out["ttfb"], 99),
        "end_p50_ms": pct(out["total"], 50), "end_p99_ms": pct(out["total"], 99),
        "refused_503": len(out["refused"]), "time_to_503_p50_ms": pct(out["refused"], 50),
        "time_to_503_p99_ms": pct(out["refused"], 99),
    }  # fmt: skip


def profile(servers: list[psutil.Process], path: str, seconds: float) -> subprocess.Popen:
    """py-spy on the server's worker (the last process: the only one with --workers 1, a worker with more),
    sampling the threads that hold the GIL: where the CPU goes, not where requests wait."""
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(servers[-1].pid), "--gil",
               "--rate", "200", "--duration", str(max(1, int(seconds))), "--format", "raw", "--output", path]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_profile(path: Path, top: int = 25) -> None:
    """Each function's share of the samples it appears in (inclusive), highest first."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:top]:
        print(f"{100 * count / max(total, 1):5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default="600@60,6000@600", help="REQUESTS@QPS, comma-separated")
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--db-type", default="postgres", choices=["postgres", "file", "memory"])
    parser.add_argument("--modes", default="simple", help="agent modes, comma-separated: simple,multi,team")
    parser.add_argument("--workers", default="1", help="server processes, comma-separated: 1,2 compares them")
    parser.add_argument("--profile", metavar="FILE",
                        help="py-spy samples of the server (GIL holders) during the first phase, as a "
                             "folded-stack file, and its top functions printed")  # fmt: skip
    parser.add_argument("--floor", action="store_true",
                        help="then the first phase against bench/floor_apps.py: the least a streamed request "
                             "costs on this stack (bare ASGI; plus one model call)")  # fmt: skip
    parser.add_argument("--overload", type=float, default=0.0,
                        help="then a phase at this multiple of the capacity reached (2: twice), 10 s long")  # fmt: skip
    args = parser.parse_args()
    results: dict = {"tokens_per_answer": args.tokens, "db_type": args.db_type, "cores": os.cpu_count()}
    for workers in [int(w) for w in args.workers.split(",")]:
        results[f"workers={workers}"] = measure(args, workers)
    counts = [int(w) for w in args.workers.split(",")]
    if len(counts) > 1:  # same run, same phases: each worker count against the first
        base = results[f"workers={counts[0]}"]
        for workers in counts[1:]:
            mine = results[f"workers={workers}"]
            results[f"ratio {workers}/{counts[0]} workers"] = {
                key: {"achieved_qps": round(mine[key]["achieved_qps"] / max(base[key]["achieved_qps"], 1e-9), 2),
                      "server_cpu_ms_per_request": round(mine[key]["cpu_ms_per_request"]["server"]
                                                         / max(base[key]["cpu_ms_per_request"]["server"], 1e-9), 2)}
                for key in base if isinstance(base[key], dict) and key in mine and "achieved_qps" in base[key]
            }  # fmt: skip
    if args.floor:
        count, qps = args.phases.split(",")[0].split("@")
        results["floor"] = {app: measure_floor(app, int(count), float(qps), args.tokens) for app in FLOOR_APPS}
    from bench._results import save_results

    save_results("load", results)


FLOOR_APPS = ("bare", "model_call")


def measure_floor(app: str, count: int, qps: float, tokens: int) -> dict:
    """One phase against a floor app (bench/floor_apps.py) in the same uvicorn as ``sage serve``."""
    stub_port, port = free_port(), free_port()
    stub = subprocess.Popen([sys.executable, str(ROOT / "bench" / "llm_stub_server.py"), str(stub_port), str(tokens)])
    env = {**os.environ, "SAGE_FLOOR_LLM_URL": f"http://127.0.0.1:{stub_port}/v1"}
    command = [sys.executable, "-m", "uvicorn", f"bench.floor_apps:{app}", "--port", str(port), "--log-level",
               "warning", "--no-access-log"]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        wait_http(f"http://127.0.0.1:{port}/", server)  # a GET: the apps answer it empty
        url = f"http://127.0.0.1:{port}/api/stream"
        asyncio.run(phase(url, 100, 25))
        before = cpu_seconds({"server": [psutil.Process(server.pid)]})["server"]
        result = asyncio.run(phase(url, count, qps))
        after = cpu_seconds({"server": [psutil.Process(server.pid)]})["server"]
        result["cpu_ms_per_request"] = {"server": round((after - before) * 1000 / count, 2)}
        print(json.dumps({f"floor {app}": {f"{count}@{qps:g}": result}}), flush=True)
        return result
    finally:
        server.terminate()
        server.wait(30)
        stub.terminate()
        stub.wait(10)


def measure(args: argparse.Namespace, workers: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="sage-bench-load-"))
    work.chmod(0o755)
    stub_port, server_port = free_port(), free_port()
    stub = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "llm_stub_server.py"), str(stub_port), str(args.tokens)]
    )
    env = {**os.environ, "SAGE_DATA_DIR": str(work), "SAGE_PORT": str(server_port), "SAGE_WORKERS": str(workers),
           "SAGE_DEFAULT_LLM_MODEL_NAME": "stub", "SAGE_DEFAULT_LLM_API_BASE_URL": f"http://127.0.0.1:{stub_port}/v1",
           "SAGE_DB_TYPE": args.db_type}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "sage_platform.cli", "serve"], env=env, start_new_session=True)
    results: dict = {"workers": workers}
    try:
        wait_http(f"http://127.0.0.1:{server_port}/health", server)
        url = f"http://127.0.0.1:{server_port}/api/stream"
        modes = args.modes.split(",")
        for mode in modes:
            asyncio.run(phase(url, 100, 25, mode))  # warm-up: connections, caches, first queries, every worker
        # The server's processes: the parent and, with --workers, uvicorn's workers.
        servers = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
        phases = [(int(c), float(q)) for c, q in (spec.split("@") for spec in args.phases.split(","))]
        capacity = 0.0

        def run(count: int, qps: float, mode: str, label: str = "") -> None:
            nonlocal capacity
            processes = {"server": servers, "llm_stub": [psutil.Process(stub.pid)],
                         "load_generator": [psutil.Process()], "postgres": postgres_processes(work / "pg")}  # fmt: skip
            before, answered = cpu_seconds(processes), llm_calls(stub_port)
            result = asyncio.run(phase(url, count, qps, mode))
            after = cpu_seconds(processes)
            done = max(1, count - result["refused_503"])  # per request the server ran, not per refusal
            result["llm_calls_per_request"] = round((llm_calls(stub_port) - answered) / done, 2)
            result["cpu_ms_per_request"] = {k: round((after[k] - before[k]) * 1000 / done, 2) for k in after}
            result["cpu_ms_per_request"]["total"] = round(sum(result["cpu_ms_per_request"].values()), 2)
            capacity = max(capacity, result["achieved_qps"])
            key = label + (f"{count}@{qps:g}" if modes == ["simple"] else f"{mode}:{count}@{qps:g}")
            results[key] = result
            print(json.dumps({f"workers={workers}": {key: result}}), flush=True)

        for number, (count, qps) in enumerate(phases):
            for mode in modes:
                spy = profile(servers, args.profile, count / qps) if args.profile and number == 0 else None
                run(count, qps, mode)
                if spy is not None:
                    spy.wait(60)
                    print_profile(Path(args.profile))
        if args.overload:  # twice (or so) what it was seen to serve: refusals must be fast, the rest unharmed
            qps = round(args.overload * capacity)
            for mode in modes:
                run(qps * 10, qps, mode, f"overload x{args.overload:g} of {capacity:g} QPS: ")
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(60)
        stub.terminate()
        stub.wait(10)
        from sage_platform.db import stop_embedded_server

        stop_embedded_server(work / "pg")
    return results


if __name__ == "__main__":
    main()
