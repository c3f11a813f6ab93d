"""FastAPI dependencies shared by the routers: the server state and the bearer-key check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, HTTPException, Request

from sage_platform.server.state import ServerState


def state_of(request: Request) -> ServerState:
    return request.app.state.sage


def require_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    if not state_of(request).keys.allows(authorization):
        raise HTTPException(
            401,
            "missing or wrong API key: send Authorization: Bearer <key> (one of SAGE_API_KEYS)",
            headers={"WWW-Authenticate": 'Bearer realm="sage"'},
        )
