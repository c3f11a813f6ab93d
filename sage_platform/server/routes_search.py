"""``GET /api/search``: the platform's retrievers over HTTP (what ``sage search`` uses when a server runs).

The server's embedder is already loaded, so a search costs milliseconds instead of the seconds a fresh
process spends loading the model.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from sage_platform.filters import RETRIEVERS, parse_filter_args
from sage_platform.server.deps import state_of

router = APIRouter(tags=["search"])


@router.get("/search")
async def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=10_000, description="the query text")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    retriever: Annotated[str | None, Query(description=" | ".join(RETRIEVERS))] = None,
    filter: Annotated[list[str] | None, Query(description="repeatable key=value")] = None,
) -> list[dict[str, Any]]:
    state = state_of(request)
    name = retriever or state.settings.retriever
    try:
        filters = parse_filter_args(filter or [])
        hits = await run_in_threadpool(lambda: state.search_retriever(name).search(q, k=k, filters=filters))
    except ValueError as error:  # an unknown retriever or filter key: the message names the valid ones
        raise HTTPException(400, str(error)) from None
    return [{"rank": rank, **asdict(hit)} for rank, hit in enumerate(hits, start=1)]
