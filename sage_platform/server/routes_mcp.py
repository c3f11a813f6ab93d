"""MCP tool servers: add, list, change, remove, enable/disable and refresh.

Listing is open to every user; every change is admin-only, and a stdio server registered here must
name a command in ``SAGE_MCP_STDIO_COMMANDS`` (empty by default): nothing reachable over the network
starts a program an operator did not allow by name.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from sage_platform.agent.requests import McpServerSpec
from sage_platform.server.deps import require_admin, state_of

router = APIRouter(tags=["mcp"])
admin = APIRouter(tags=["mcp"], dependencies=[Depends(require_admin)])


def _allowed(request: Request, spec: McpServerSpec) -> McpServerSpec:
    if spec.protocol == "stdio":
        allowed = state_of(request).settings.mcp_stdio_command_list
        if spec.command not in allowed:
            raise HTTPException(
                403,
                f"stdio command {spec.command!r} is not allowed: an operator must list it in SAGE_MCP_STDIO_COMMANDS"
                f" (now {', '.join(allowed) if allowed else 'empty'})",
            )
    return spec


def _known(request: Request, name: str) -> None:
    if name not in state_of(request).mcp.servers:
        raise HTTPException(404, f"no MCP server named {name!r}")


@admin.post("/add", status_code=201, summary="Register an MCP server and discover its tools")
async def add(request: Request, spec: McpServerSpec) -> dict[str, Any]:
    try:
        server = await state_of(request).mcp.add(_allowed(request, spec))
    except KeyError as error:
        raise HTTPException(409, error.args[0]) from error
    return server.public()


@router.get("/list", summary="Registered MCP servers, their status and tools")
async def list_servers(request: Request) -> list[dict[str, Any]]:
    return [s.public() for s in state_of(request).mcp.servers.values()]


@admin.put("/{name}", summary="Replace an MCP server's settings")
async def update(request: Request, name: str, spec: McpServerSpec) -> dict[str, Any]:
    _known(request, name)
    if spec.name != name:
        raise HTTPException(400, f"the body names {spec.name!r} but the path names {name!r}")
    return (await state_of(request).mcp.add(_allowed(request, spec), replace=True)).public()


@admin.delete("/{name}", summary="Remove an MCP server")
async def remove(request: Request, name: str) -> dict[str, Any]:
    _known(request, name)
    await state_of(request).mcp.remove(name)
    return {"removed": name}


@admin.put("/{name}/toggle", summary="Enable or disable an MCP server")
async def toggle(request: Request, name: str) -> dict[str, Any]:
    _known(request, name)
    return (await state_of(request).mcp.toggle(name)).public()


@admin.post("/{name}/refresh", summary="Reconnect and list an MCP server's tools again")
async def refresh(request: Request, name: str) -> dict[str, Any]:
    _known(request, name)
    return (await state_of(request).mcp.refresh(name)).public()


@admin.post("/{name}/preview", summary="Connect to an MCP server and list its tools, without registering it")
async def preview(request: Request, name: str, spec: McpServerSpec | None = None) -> dict[str, Any]:
    """With a body: the server it describes (whose name must be ``name``). Without: the registered one."""
    if spec is None:
        _known(request, name)
        spec = state_of(request).mcp.servers[name].spec
    elif spec.name != name:
        raise HTTPException(400, f"the body names {spec.name!r} but the path names {name!r}")
    return await state_of(request).mcp.preview(_allowed(request, spec))


router.include_router(admin)
