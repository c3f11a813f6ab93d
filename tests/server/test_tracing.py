"""OpenTelemetry: spans reach an OTLP/HTTP receiver when tracing is on; nothing is loaded when off."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests._http import serve
from tests.server.conftest import AgentClient


def test_spans_are_exported_to_the_otlp_endpoint(start_server: Callable[..., AgentClient]) -> None:
    received: list[bytes] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/traces"
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            arrived.set()

    with serve(Receiver) as url:
        server = start_server(trace_jaeger_url=url)
        messages = server.stream('[[tool:recall {"query": "x"}]] hi', user_id="u")
        trace_id = messages[-1]["trace_id"]  # the run's trace, named in its stream_end
        from sage_platform.agent.tracing import flush_tracing

        flush_tracing()
        assert arrived.wait(10)
    body = b"".join(received)
    for name in (b"agent.run", b"llm.stream", b"tool.call", b"sage-agent-server"):
        assert name in body
    assert len(trace_id) == 32 and bytes.fromhex(trace_id) in body  # the exported spans carry that id


def test_tracing_off_loads_no_sdk_and_no_exporter() -> None:
    # FastAPI itself imports the OpenTelemetry API; the SDK and the exporter are ours to avoid.
    code = (
        "import sys; from sage_platform.config import Settings; from sage_platform.server import create_app;"
        "from sage_platform.agent.tracing import configure_tracing, span;"
        "create_app(Settings()); print(configure_tracing(Settings()));"
        "print(any(m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
