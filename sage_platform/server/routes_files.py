"""Workspace files over HTTP: upload, list, download, delete; always the caller's own.

Uploads are multipart (``file`` and ``session_id``), at most ``SAGE_WORKSPACE_MAX_FILE_BYTES``; the
content type is sniffed from the bytes. Downloads are attachments with the type and ``nosniff``, so an
uploaded HTML file is never rendered as this site's page.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from sage_platform.server.deps import Caller, may_write, state_of
from sage_platform.workspace import FileRecord, FileStoreError

router = APIRouter(tags=["files"])
SESSION = r"^[A-Za-z0-9_.:-]+$"


def _public(record: FileRecord) -> dict[str, Any]:
    return record.public()


@router.post("", status_code=201, summary="Upload a file into a session's workspace")
async def upload(
    request: Request,
    identity: Caller,
    file: Annotated[UploadFile, File()],
    session_id: Annotated[str, Form(min_length=1, max_length=128, pattern=SESSION)],
) -> dict[str, Any]:
    sage = state_of(request)
    owner = await run_in_threadpool(sage.store.session_owner, session_id)
    may_write(identity, owner, f"session {session_id}")
    limit = sage.settings.workspace_max_file_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"the file is larger than SAGE_WORKSPACE_MAX_FILE_BYTES ({limit:,} bytes)")
    try:
        record = await run_in_threadpool(sage.files.add, identity.user_id, session_id, file.filename or "", data)
    except ValueError as error:
        raise HTTPException(400, str(error)) from error
    except FileStoreError as error:
        raise HTTPException(503, str(error)) from error
    return _public(record)


@router.get("", summary="Your workspace files, newest first")
async def listing(
    request: Request, identity: Caller, session_id: str | None = Query(None, max_length=128)
) -> list[dict[str, Any]]:
    records = await run_in_threadpool(state_of(request).files.listing, identity.user_id, session_id)
    return [_public(r) for r in records]


@router.get("/{file_id}", summary="Download a file", response_class=Response)
async def download(request: Request, file_id: str, identity: Caller) -> Response:
    try:
        record, data = await run_in_threadpool(state_of(request).files.read, identity.user_id, file_id)
    except FileNotFoundError as error:
        raise HTTPException(404, f"no file {file_id}") from error
    except FileStoreError as error:
        raise HTTPException(503, str(error)) from error
    ascii_name = record.name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(record.name, safe='')}"
    headers = {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    return Response(data, media_type=record.content_type, headers=headers)


@router.delete("/{file_id}", summary="Delete a file (this version)")
async def delete(request: Request, file_id: str, identity: Caller) -> dict[str, Any]:
    try:
        record = await run_in_threadpool(state_of(request).files.delete, identity.user_id, file_id)
    except FileNotFoundError as error:
        raise HTTPException(404, f"no file {file_id}") from error
    return {"deleted": record.file_id, "name": record.name, "version": record.version}
