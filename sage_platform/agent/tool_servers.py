"""Registered MCP tool servers, each held open by the official ``mcp`` client.

Each server gets one owner task that opens the transport (streamable HTTP, SSE or stdio), runs
``initialize`` and ``tools/list``, and keeps the session until the server is removed, disabled or
refreshed. Tool calls from any request go through that session. A server that cannot be reached
is kept, marked unavailable with the reason; its tools are offered to nobody, the rest still work.

Usage::

    registry = ToolServerRegistry()
    await registry.add(McpServerSpec(name="files", protocol="stdio", command="mcp-files"))
    registry.tools()          # {"files__read": Tool(...), ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from sage_platform.agent.requests import McpServerSpec
from sage_platform.agent.tools import Tool, ToolContext

logger = logging.getLogger(__name__)
CONNECT_TIMEOUT = 15.0


def qualified_name(server: str, tool: str) -> str:
    """``server__tool``, within OpenAI's function-name rules (``[A-Za-z0-9_-]{1,64}``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{server}__{tool}")[:64]


def _reason(error: BaseException) -> str:
    """The innermost message of an error that may arrive wrapped in exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _transport(spec: McpServerSpec) -> Any:
    if spec.protocol == "stdio":
        from mcp.client.stdio import StdioServerParameters, stdio_client

        assert spec.command is not None
        return stdio_client(StdioServerParameters(command=spec.command, args=spec.args, env=spec.env or None))
    headers = {"Authorization": f"Bearer {spec.api_key.get_secret_value()}"} if spec.api_key else {}
    assert spec.url is not None
    if spec.protocol == "sse":
        from mcp.client.sse import sse_client

        return sse_client(spec.url, headers=headers)
    import httpx2  # the HTTP client the mcp SDK is built on
    from mcp.client.streamable_http import streamable_http_client

    # The SDK's own defaults: 30 s per operation, 300 s to read (a server may hold a stream open);
    # redirects are left to the transport, which follows them only within the endpoint's origin.
    client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
    return _streamable(spec.url, client, streamable_http_client)


@contextlib.asynccontextmanager
async def _streamable(url: str, http_client: Any, opener: Any) -> Any:
    async with http_client, opener(url, http_client=http_client) as streams:
        yield streams[0], streams[1]


def _result_text(result: Any) -> str:
    parts = [getattr(block, "text", None) or block.model_dump_json() for block in result.content]
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


class McpServer:
    def __init__(self, spec: McpServerSpec) -> None:
        self.spec = spec
        self.status = "disabled" if not spec.enabled else "connecting"
        self.reason: str | None = None
        self.tools: dict[str, Tool] = {}
        self._session: Any = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.spec.enabled:
            return
        self._task = asyncio.create_task(self._own(), name=f"mcp-{self.spec.name}")
        try:
            await asyncio.wait_for(self._ready.wait(), CONNECT_TIMEOUT)
        except TimeoutError:
            self._mark_unavailable(f"no answer within {CONNECT_TIMEOUT:g} s")
            await self.stop()

    async def _own(self) -> None:
        from mcp import ClientSession

        try:
            async with _transport(self.spec) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                self._session = session
                allowed = self.spec.tools  # the spec's allow-list, when it gives one
                self.tools = {t.name: self._tool(t) for t in listed.tools if allowed is None or t.name in allowed}
                self.status, self.reason = "connected", None
                self._ready.set()
                await self._stop.wait()
        except (Exception, BaseExceptionGroup) as error:
            self._mark_unavailable(_reason(error))
            logger.warning("MCP server %s unavailable: %s", self.spec.name, self.reason)
        finally:
            self._session = None
            self._ready.set()

    def _mark_unavailable(self, reason: str) -> None:
        self.status, self.reason = "unavailable", reason
        for tool in self.tools.values():
            tool.available, tool.reason = False, reason

    def _tool(self, listed: Any) -> Tool:
        remote = listed.name

        async def call(arguments: dict[str, Any], _: ToolContext) -> str:
            if self._session is None:
                raise ConnectionError(f"MCP server {self.spec.name} is unavailable: {self.reason}")
            result = await self._session.call_tool(remote, arguments)
            text = _result_text(result)
            if result.is_error:
                raise RuntimeError(text or "the MCP tool reported an error")
            return text

        return Tool(
            qualified_name(self.spec.name, remote),
            listed.description or remote,
            listed.input_schema or {"type": "object", "properties": {}},
            call,
            source=self.spec.name,
            extra={"remote_name": remote},
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except (TimeoutError, Exception):
                self._task.cancel()
        self._task = None
        if self.status == "connected":
            self.status = "disabled" if not self.spec.enabled else "stopped"

    def public(self) -> dict[str, Any]:
        return {
            **self.spec.public(),
            "status": self.status,
            "reason": self.reason,
            "tools": [t.public() for t in self.tools.values()],
        }


class ToolServerRegistry:
    def __init__(self) -> None:
        self.servers: dict[str, McpServer] = {}
        self._lock = asyncio.Lock()

    async def add(self, spec: McpServerSpec, *, replace: bool = False) -> McpServer:
        async with self._lock:
            if spec.name in self.servers:
                if not replace:
                    raise KeyError(f"MCP server {spec.name!r} is already registered; use PUT to change it")
                await self.servers.pop(spec.name).stop()
            server = McpServer(spec)
            self.servers[spec.name] = server
        await server.start()
        return server

    async def preview(self, spec: McpServerSpec) -> dict[str, Any]:
        """Connect, list the tools with their schemas, disconnect: nothing is registered."""
        server = McpServer(spec.model_copy(update={"enabled": True}))
        await server.start()
        try:
            return {
                **server.public(),
                "tools": [{**t.public(), "parameters": t.parameters} for t in server.tools.values()],
            }
        finally:
            await server.stop()

    def get(self, name: str) -> McpServer:
        if name not in self.servers:
            known = ", ".join(sorted(self.servers)) or "none"
            raise KeyError(f"no MCP server named {name!r} (registered: {known})")
        return self.servers[name]

    async def remove(self, name: str) -> None:
        server = self.get(name)
        async with self._lock:
            self.servers.pop(name, None)
        await server.stop()

    async def toggle(self, name: str) -> McpServer:
        spec = self.get(name).spec.model_copy(update={"enabled": not self.get(name).spec.enabled})
        return await self.add(spec, replace=True)

    async def refresh(self, name: str) -> McpServer:
        return await self.add(self.get(name).spec, replace=True)

    def tools(self) -> dict[str, Tool]:
        return {t.name: t for s in self.servers.values() if s.status == "connected" for t in s.tools.values()}

    def unavailable(self) -> list[dict[str, Any]]:
        return [s.public() for s in self.servers.values() if s.status == "unavailable"]

    async def load_file(self, path: Path) -> int:
        """Register the servers of a JSON file: ``{"mcpServers": {name: spec}}`` or a list of specs."""
        if not path.is_file():
            raise ValueError(f"{path}: no such file (SAGE_MCP_CONFIG_PATH / --preset_mcp_config)")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        entries = [{"name": n, **s} for n, s in data.get("mcpServers", {}).items()] if isinstance(data, dict) else data
        specs = [McpServerSpec.model_validate(entry) for entry in entries]
        await asyncio.gather(*(self.add(spec, replace=True) for spec in specs))
        return len(specs)

    async def close(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.servers.values()), return_exceptions=True)
        self.servers.clear()
