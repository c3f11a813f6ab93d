"""FastAPI dependencies shared by the routers: the server state, the caller's identity, ownership.

With keys configured (``SAGE_API_KEYS``, ``SAGE_ADMIN_KEYS`` or ``sage keys create``), every ``/api``
request needs ``Authorization: Bearer <key>`` and acts as the key's user. With none (or ``--no_auth``),
the request guard has already limited the server to loopback clients with a loopback Host, and the
caller is the machine's own user, ``default``, an admin.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from sage_platform.agent.state import AgentState
from sage_platform.bearer_auth import identity_in
from sage_platform.identity import LOCAL, Identity

audit = logging.getLogger("sage.audit")


def state_of(request: Request) -> AgentState:
    state: AgentState = request.app.state.sage
    return state


def keys_required(state: AgentState) -> bool:
    return not state.settings.no_auth and state.keys.configured()


API_KEYS_HINT = "SAGE_API_KEYS, or one issued by `sage keys create`"


def caller(request: Request) -> Identity:
    """The identity the bearer check (``sage_platform.bearer_auth``) found; without keys, the local user."""
    identity = identity_in(request.scope)
    if identity is not None:
        return identity
    if keys_required(state_of(request)):  # only reachable if a route escaped the check: refuse, never guess
        raise HTTPException(401, f"this server needs Authorization: Bearer <key> ({API_KEYS_HINT})")
    return LOCAL


Caller = Annotated[Identity, Depends(caller)]


async def store_unavailable(request: Request, error: Exception) -> JSONResponse:
    """The answer to ``StoreUnavailable``: 503, retry in a few seconds."""
    return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "5"})


def require_admin(identity: Caller) -> Identity:
    if not identity.admin:
        raise HTTPException(403, f"user {identity.user_id!r} is not an admin: this needs an admin key")
    return identity


def may_read(identity: Identity, owner: str | None, what: str) -> None:
    """404 unless ``identity`` owns it or is an admin (whose read of another user's data is logged)."""
    if owner is None or not identity.owns(owner):
        raise HTTPException(404, f"no {what}")
    if owner != identity.user_id:
        audit.info("admin %s read %s of user %s", identity.user_id, what, owner)


def may_write(identity: Identity, owner: str | None, what: str) -> None:
    """404 unless ``identity`` owns it: not even admins write into another user's session."""
    if owner is not None and owner != identity.user_id:
        raise HTTPException(404, f"no {what}")
