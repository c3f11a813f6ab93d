"""Skills and agent definitions: what ``available_skills``, ``agent_id`` and ``available_sub_agent_ids`` name.

Listing is open to every user; defining or removing an agent is admin-only (it shapes every user's runs).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from sage_platform.agent.profiles import UnknownAgents
from sage_platform.agent.requests import SubAgentSpec
from sage_platform.server.deps import require_admin, state_of

router = APIRouter(tags=["agents"])
admin = APIRouter(tags=["agents"], dependencies=[Depends(require_admin)])


@router.get("/skills", summary="Skills in SAGE_SKILLS_DIR: name, description, tools, files")
async def skills(request: Request) -> list[dict[str, Any]]:
    library = state_of(request).agent.skills
    found = await run_in_threadpool(library.skills)
    return [s.public() for s in found.values()]


@router.get("/agents", summary="Agents defined in agent_setting.json or here, usable as sub-agents or agent_id")
async def agents(request: Request) -> list[dict[str, Any]]:
    return [a.model_dump() for a in state_of(request).agent.agents.agents.values()]


@admin.post("/agents", status_code=201, summary="Define (or replace) an agent")
async def define(request: Request, spec: SubAgentSpec) -> dict[str, Any]:
    return state_of(request).agent.agents.add(spec).model_dump()


@admin.delete("/agents/{name}", summary="Remove an agent definition")
async def remove(request: Request, name: str) -> dict[str, Any]:
    try:
        state_of(request).agent.agents.remove(name)
    except UnknownAgents as error:
        raise HTTPException(404, str(error)) from error
    return {"removed": name}


router.include_router(admin)
