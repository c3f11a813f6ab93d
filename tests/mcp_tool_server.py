"""A real MCP tool server, built with the official ``mcp`` SDK, for the agent server's tests.

Tools: ``add(a, b)``, ``echo(text)``, ``explode()`` (always raises) and ``meet(group, parties)``, which
returns only when ``parties`` calls of the same group are in progress at once (so a caller that runs
tool calls one after another gets "alone" after ``MEET_TIMEOUT_S``). Serve it over streamable
HTTP on loopback with ``mcp_http_server()``, or over stdio with ``python -m tests.mcp_tool_server``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver import MCPServer

tools = MCPServer("test-tools")


@tools.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tools.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


MEET_TIMEOUT_S = 10.0
_arrived: dict[str, int] = {}
_everyone_here: dict[str, asyncio.Event] = {}


@tools.tool()
async def meet(group: str, parties: int) -> str:
    """Wait until ``parties`` calls of ``group`` are running at the same time."""
    _arrived[group] = _arrived.get(group, 0) + 1
    event = _everyone_here.setdefault(group, asyncio.Event())
    if _arrived[group] >= parties:
        event.set()
    try:
        await asyncio.wait_for(event.wait(), MEET_TIMEOUT_S)
    except TimeoutError:
        return f"alone: {_arrived[group]} of {parties} arrived"
    return f"met: {parties} at once"


@tools.tool()
def explode() -> str:
    """Always fails."""
    raise RuntimeError("the explode tool exploded")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def uvicorn_thread(app: object, port: int) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1:port in a thread until the block ends."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
    )  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def mcp_http_server() -> Iterator[str]:
    """The tool server's streamable HTTP endpoint URL."""
    with uvicorn_thread(tools.streamable_http_app(), free_port()) as base:
        yield base + "/mcp"


if __name__ == "__main__":
    tools.run("stdio")
