"""MCP tool servers: add, list, change, remove, enable/disable and refresh."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from sage_platform.server.deps import state_of
from sage_platform.server.schemas import McpServerSpec

router = APIRouter(tags=["mcp"])


def _known(request: Request, name: str) -> None:
    if name not in state_of(request).mcp.servers:
        raise HTTPException(404, f"no MCP server named {name!r}")


@router.post("/add", status_code=201, summary="Register an MCP server and discover its tools")
async def add(request: Request, spec: McpServerSpec) -> dict[str, Any]:
    try:
        server = await state_of(request).mcp.add(spec)
    except KeyError as error:
        raise HTTPException(409, error.args[0]) from error
    return server.public()


@router.get("/list", summary="Registered MCP servers, their status and tools")
async def list_servers(request: Request) -> list[dict[str, Any]]:
    return [s.public() for s in state_of(request).mcp.servers.values()]


@router.put("/{name}", summary="Replace an MCP server's settings")
async def update(request: Request, name: str, spec: McpServerSpec) -> dict[str, Any]:
    _known(request, name)
    if spec.name != name:
        raise HTTPException(400, f"the body names {spec.name!r} but the path names {name!r}")
    return (await state_of(request).mcp.add(spec, replace=True)).public()


@router.delete("/{name}", summary="Remove an MCP server")
async def remove(request: Request, name: str) -> dict[str, Any]:
    _known(request, name)
    await state_of(request).mcp.remove(name)
    return {"removed": name}


@router.put("/{name}/toggle", summary="Enable or disable an MCP server")
async def toggle(request: Request, name: str) -> dict[str, Any]:
    _known(request, name)
    return (await state_of(request).mcp.toggle(name)).public()


@router.post("/{name}/refresh", summary="Reconnect and list an MCP server's tools again")
async def refresh(request: Request, name: str) -> dict[str, Any]:
    _known(request, name)
    return (await state_of(request).mcp.refresh(name)).public()
