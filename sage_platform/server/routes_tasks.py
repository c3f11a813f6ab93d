"""Long-running agent tasks: submit, status, and the stream followed live from Postgres."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from sage_platform.agent.messages import encode
from sage_platform.agent.requests import StreamRequest
from sage_platform.agent.tasks import TERMINAL, TaskStore
from sage_platform.server.deps import Caller, may_read, state_of
from sage_platform.server.routes_stream import acting_as

router = APIRouter(tags=["tasks"])
POLL_SECONDS = 0.2
FOLLOW_GRACE_S = 120.0


def _tasks(request: Request) -> TaskStore:
    return TaskStore(state_of(request).platform.db)


@router.post("", status_code=202, summary="Submit a long agent task (run by Dagster's streaming_agent_job)")
async def submit(request: Request, body: StreamRequest, identity: Caller) -> dict[str, Any]:
    body = await acting_as(request, identity, body)
    try:
        return await run_in_threadpool(_tasks(request).submit, body)
    except ValueError as error:
        raise HTTPException(400, str(error)) from error


@router.get("/{task_id}", summary="A task's status and its Dagster run id")
async def status(request: Request, task_id: str, identity: Caller) -> dict[str, Any]:
    task = await run_in_threadpool(_tasks(request).get, task_id)
    may_read(identity, task["user_id"] if task else None, f"task {task_id}")
    assert task is not None
    return task


@router.get("/{task_id}/stream", response_class=StreamingResponse, summary="The task's messages as NDJSON, live")
async def stream(request: Request, task_id: str, identity: Caller, offset: int = Query(0, ge=0)) -> StreamingResponse:
    tasks = _tasks(request)
    task = await run_in_threadpool(tasks.get, task_id)
    may_read(identity, task["user_id"] if task else None, f"task {task_id}")

    # A follower gives up once the run could no longer be going: its deadline, plus time to start.
    give_up = time.monotonic() + state_of(request).settings.run_timeout_s + FOLLOW_GRACE_S

    async def follow() -> AsyncIterator[bytes]:
        index = offset
        while True:
            if time.monotonic() > give_up:
                yield encode({"type": "error", "task_id": task_id, "content": "stopped following: the task did not "
                              "finish within its run's deadline (SAGE_RUN_TIMEOUT_S); see GET /api/tasks/" + task_id})  # fmt: skip
                return
            task = await run_in_threadpool(tasks.get, task_id)
            messages = await run_in_threadpool(tasks.events, task_id, index)
            if messages:
                index += len(messages)
                yield b"".join(encode(m) for m in messages)
            if task is None or (task["status"] in TERMINAL and not messages):
                return
            if not messages:
                await asyncio.sleep(POLL_SECONDS)  # the job writes from another process: poll the table

    return StreamingResponse(follow(), media_type="application/x-ndjson")
