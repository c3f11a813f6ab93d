"""Two ``sage serve`` processes on one database are interchangeable: a session streamed by one is
followed, guided, interrupted and refused through the other, and a process killed mid-stream frees
its session once its lease expires."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests._children import Child
from tests._http import healthy
from tests.chat_stub import ChatStub
from tests.mcp_tool_server import free_port

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 2  # short, so the killed holder's lease runs out within the test


class Server:
    def __init__(self, child: Child, url: str) -> None:
        self.child = child
        self.url = url

    def stream(self, session_id: str, content: str) -> requests.Response:
        """As the loopback caller's own user (``default``): the session is theirs to guide."""
        body: dict[str, Any] = {"messages": [{"role": "user", "content": content}], "session_id": session_id}
        return requests.post(f"{self.url}/api/stream", json=body, stream=True, timeout=60)

    def resume(self, session_id: str, last_index: int = 0) -> requests.Response:
        return requests.get(f"{self.url}/api/stream/resume/{session_id}?last_index={last_index}", stream=True,
                            timeout=60)  # fmt: skip


@pytest.fixture
def servers(env: dict[str, str], llm: ChatStub) -> Iterator[Callable[..., Server]]:
    started: list[Child] = []

    def start(**extra: str) -> Server:
        port = free_port()
        child_env = {**os.environ, **env, "SAGE_PORT": str(port), "SAGE_DEFAULT_LLM_MODEL_NAME": "stub-model",
                     "SAGE_DEFAULT_LLM_API_BASE_URL": llm.url, "SAGE_DEFAULT_LLM_MAX_RETRIES": "0",
                     "SAGE_STREAM_LEASE_SECONDS": str(LEASE_S), **extra}  # fmt: skip
        child = Child([sys.executable, "-m", "sage_platform.cli", "serve"], env=child_env, name=f"sage serve :{port}")
        started.append(child)
        url = f"http://127.0.0.1:{port}"
        child.wait_for(lambda: healthy(url), timeout=120, what="/health")
        return Server(child, url)

    yield start
    llm.release()
    for child in started:
        child.__exit__(None, None, None)


def _lines(response: requests.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line:
            yield json.loads(line)


def _until(lines: Iterator[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Messages up to and including the first of type ``kind``."""
    taken = []
    for message in lines:
        taken.append(message)
        if message["type"] == kind:
            return taken
    raise AssertionError(f"the stream ended without {kind}: {[m['type'] for m in taken]}")


def test_a_stream_on_one_process_is_followed_guided_and_refused_through_another(
    servers: Callable[..., Server], llm: ChatStub
) -> None:
    a, b = servers(SAGE_MAX_STREAMS_PER_USER="2"), servers(SAGE_MAX_STREAMS_PER_USER="2")
    session = f"s-{uuid.uuid4().hex[:8]}"
    on_a = a.stream(session, "tell me [[hold]] about leases")
    assert on_a.status_code == 200, on_a.text
    a_lines = _lines(on_a)
    seen_on_a = [next(a_lines) for _ in range(2)]  # two tokens, then the model holds
    assert [m["type"] for m in seen_on_a] == ["assistant_text", "assistant_text"]
    assert llm.holding.wait(30)

    # B follows it live from index 1: the second token, then whatever A streams next.
    followed = b.resume(session, last_index=1)
    assert followed.status_code == 200
    b_lines = _lines(followed)
    assert next(b_lines) == seen_on_a[1]

    busy = b.stream(session, "a second stream for the same session")
    assert busy.status_code == 409 and "already has a running stream" in busy.json()["detail"]
    other = b.stream(f"s-{uuid.uuid4().hex[:8]}", "[[hold]] a second session of the same user")
    assert other.status_code == 200  # the user's second stream of two, on B
    third = a.stream(f"s-{uuid.uuid4().hex[:8]}", "and a third")
    assert third.status_code == 429 and "SAGE_MAX_STREAMS_PER_USER" in third.json()["detail"]
    other.close()

    guided = requests.post(f"{b.url}/api/sessions/{session}/inject-user-message", json={"content": "be brief"},
                           timeout=30)  # fmt: skip
    assert guided.status_code == 200 and guided.json()["injected"] is True, guided.text
    too_long = requests.post(f"{b.url}/api/sessions/{session}/inject-user-message", json={"content": "x" * 9000},
                             timeout=30)  # fmt: skip
    assert too_long.status_code == 413 and "another server process" in too_long.json()["detail"]

    llm.release()
    rest_on_a = _until(a_lines, "stream_end")
    rest_on_b = _until(b_lines, "stream_end")
    assert rest_on_b == rest_on_a  # no gap, no repeat: the same messages, in order
    assert rest_on_a[-1]["saved"] is True
    assert any(m["type"] == "user_input" and m["content"] == "be brief" for m in rest_on_a)

    # The finished run, replayed through B, is the whole stream A sent.
    assert list(_lines(b.resume(session))) == seen_on_a + rest_on_a

    # B's session list sees a run on A as running, and no longer once it ended.
    llm.held.clear()
    again = _lines(a.stream(session, "[[hold]] once more"))
    next(again)
    listed = {s["session_id"]: s["running"] for s in requests.get(f"{b.url}/api/sessions", timeout=30).json()}
    assert listed[session] is True
    llm.release()
    _until(again, "stream_end")
    listed = {s["session_id"]: s["running"] for s in requests.get(f"{b.url}/api/sessions", timeout=30).json()}
    assert listed[session] is False


def test_a_stream_on_one_process_is_interrupted_and_resumed_through_another(
    servers: Callable[..., Server], llm: ChatStub
) -> None:
    a, b = servers(), servers()
    session = f"s-{uuid.uuid4().hex[:8]}"
    on_a = a.stream(session, "explain [[hold]] NOTIFY")
    a_lines = _lines(on_a)
    first = [next(a_lines) for _ in range(2)]
    assert llm.holding.wait(30)
    b_lines = _lines(b.resume(session))

    stopped = requests.post(f"{b.url}/api/sessions/{session}/interrupt", timeout=30)
    assert stopped.status_code == 200 and stopped.json()["interrupted"] is True, (
        f"{stopped.text}\nA said:\n{a.child.tail()}\nB said:\n{b.child.tail()}"
    )
    rest = _until(a_lines, "stream_end")
    assert any(m["type"] == "error" and "interrupted by request" in m["content"] for m in rest)
    assert _until(b_lines, "stream_end") == first + rest  # followed live from the start

    assert list(_lines(b.resume(session))) == first + rest  # and replayed once it ended
    again = b.stream(session, "go on")  # the session is free, on either process
    assert again.status_code == 200
    assert _until(_lines(again), "stream_end")[-1]["saved"] is True


def test_a_total_cap_holds_across_processes(servers: Callable[..., Server], llm: ChatStub) -> None:
    a, b = servers(SAGE_MAX_STREAMS_TOTAL="1"), servers(SAGE_MAX_STREAMS_TOTAL="1")
    held = _lines(a.stream(f"s-{uuid.uuid4().hex[:8]}", "[[hold]] the only stream allowed"))
    next(held)
    assert llm.holding.wait(30)
    refused = b.stream(f"s-{uuid.uuid4().hex[:8]}", "another session, on the other process")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert "SAGE_MAX_STREAMS_TOTAL" in refused.json()["detail"]
    llm.release()
    _until(held, "stream_end")
    assert b.stream(f"s-{uuid.uuid4().hex[:8]}", "now there is room").status_code == 200


def test_a_process_killed_mid_stream_frees_its_session_when_its_lease_expires(
    servers: Callable[..., Server], llm: ChatStub
) -> None:
    a, b = servers(), servers()
    session = f"s-{uuid.uuid4().hex[:8]}"
    a_lines = _lines(a.stream(session, "[[hold]] a long answer"))
    next(a_lines)
    assert llm.holding.wait(30)
    b_lines = _lines(b.resume(session))
    assert next(b_lines)["type"] == "assistant_text"

    a.child.process.send_signal(signal.SIGKILL)
    a.child.wait(10)
    refused = b.stream(session, "too early?")
    # The lease outlives its holder by at most LEASE_S; until then, the session is still busy.
    killed_at = time.monotonic()
    while refused.status_code == 409:
        assert time.monotonic() - killed_at < LEASE_S + 10, "the dead holder's lease never expired"
        time.sleep(0.1)  # the lease expires in the database: no event to wait on
        refused = b.stream(session, "now?")
    assert refused.status_code == 200
    assert _until(_lines(refused), "stream_end")[-1]["saved"] is True
    ended = list(b_lines)
    assert ended[-1]["type"] == "error" and "stopped before it ended" in ended[-1]["content"]


def test_sage_serve_workers_share_one_port(env: dict[str, str], llm: ChatStub) -> None:
    port = free_port()
    child_env = {**os.environ, **env, "SAGE_DEFAULT_LLM_MODEL_NAME": "stub-model",
                 "SAGE_DEFAULT_LLM_API_BASE_URL": llm.url}  # fmt: skip
    command = [sys.executable, "-m", "sage_platform.cli", "serve", "--workers", "2", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with Child(command, env=child_env, name="sage serve --workers 2") as server:
        server.wait_for(lambda: healthy(url), timeout=120, what="/health")
        answered_by: set[int] = set()
        for _ in range(200):  # each on a new connection: the kernel hands them to either worker
            answered_by.add(
                requests.get(f"{url}/health", headers={"Connection": "close"}, timeout=10).json()["process"]
            )
            if len(answered_by) == 2:
                break
        assert len(answered_by) == 2 and server.pid not in answered_by
        ends = []
        for i in range(6):
            body = {"messages": [{"role": "user", "content": f"question {i}"}]}
            response = requests.post(f"{url}/api/stream", json=body, headers={"Connection": "close"}, timeout=60)
            ends.append(json.loads(response.text.splitlines()[-1]))
        assert all(end["type"] == "stream_end" and end["saved"] for end in ends)
        server.signal(signal.SIGINT)
        assert server.wait(60) == 0


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (scripts/install-test-tools)")
def test_behind_the_shipped_nginx_load_balancer_any_replica_serves_any_request(
    servers: Callable[..., Server], llm: ChatStub, tmp_path: Path
) -> None:
    replicas = [servers(), servers()]
    port = free_port()
    shipped = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server agent-server:8080 resolve;" in shipped and "listen 8080;" in shipped
    local = "\n".join(f"server {r.url.removeprefix('http://')};" for r in replicas)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        shipped.replace("server agent-server:8080 resolve;", local)
        .replace("listen 8080;", f"listen 127.0.0.1:{port};")
        .replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    )
    url = f"http://127.0.0.1:{port}"
    with Child(["nginx", "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"], name="nginx") as nginx:
        nginx.wait_for(lambda: healthy(url), timeout=30, what="the load balancer")
        behind = Server(nginx, url)
        answered_by = {requests.get(f"{url}/health", timeout=10).json()["process"] for _ in range(8)}
        assert answered_by == {r.child.pid for r in replicas}  # least_conn spreads them over both

        session = f"s-{uuid.uuid4().hex[:8]}"
        lines = _lines(behind.stream(session, "[[hold]] through the balancer"))
        first = next(lines)
        assert first["type"] == "assistant_text"
        assert llm.holding.wait(30)
        # Whichever replica each of these lands on, it reaches the one streaming the session.
        assert behind.stream(session, "again").status_code == 409
        stopped = requests.post(f"{url}/api/sessions/{session}/interrupt", timeout=30)
        assert stopped.json()["interrupted"] is True
        rest = _until(lines, "stream_end")
        assert any(m["type"] == "error" and "interrupted by request" in m["content"] for m in rest)
        assert list(_lines(behind.resume(session))) == [first, *rest]
