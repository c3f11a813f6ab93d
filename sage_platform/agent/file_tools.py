"""The agent's file tools over the session's workspace: list, read, write (a new version each time), search.

Files are named by the ids and names the workspace lists for the caller's own user and session; there
is no path to give, so nothing outside the workspace can be reached. PDF and HTML are read by the
ingestion readers in their isolated worker process, and text is cut at ``max_chars``.

Usage::

    tools = file_tools(lambda: workspace_files, max_file_bytes=20_000_000)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sage_platform.agent.tools import Tool, ToolContext, hit_citation
from sage_platform.workspace import FileRecord, SessionIndex, WorkspaceFiles
from sage_platform.workspace.text import extract_text

READ_CHARS = 20_000
MAX_READ_CHARS = 100_000


def file_tools(
    files: Callable[[], WorkspaceFiles], index: Callable[[], SessionIndex], *, max_file_bytes: int
) -> dict[str, Tool]:
    def find(args: dict[str, Any], ctx: ToolContext) -> FileRecord:
        workspace = files()
        if args.get("file_id"):
            return workspace.find(ctx.user_id, str(args["file_id"]), ctx.session_id)
        return workspace.latest(ctx.user_id, ctx.session_id, str(args.get("name", "")))

    async def list_files(args: dict[str, Any], ctx: ToolContext) -> Any:
        records = await asyncio.to_thread(files().listing, ctx.user_id, ctx.session_id)
        return [{k: v for k, v in r.public().items() if k != "sha256"} for r in records]

    async def read_file(args: dict[str, Any], ctx: ToolContext) -> Any:
        limit = max(1, min(int(args.get("max_chars", READ_CHARS)), MAX_READ_CHARS))

        def read() -> str:
            record = find(args, ctx)
            text = extract_text(record, files().store.get(record.file_id))
            cut = f"\n[cut at {limit:,} of {len(text):,} characters]" if len(text) > limit else ""
            return text[:limit] + cut

        return await asyncio.to_thread(read)

    async def write_file(args: dict[str, Any], ctx: ToolContext) -> Any:
        data = str(args.get("content", "")).encode()
        if len(data) > max_file_bytes:
            raise ValueError(f"{len(data):,} bytes is over SAGE_WORKSPACE_MAX_FILE_BYTES ({max_file_bytes:,})")
        record = await asyncio.to_thread(files().add, ctx.user_id, ctx.session_id, str(args.get("name", "")), data)
        return {k: v for k, v in record.public().items() if k != "sha256"}

    async def search_files(args: dict[str, Any], ctx: ToolContext) -> Any:
        query, k = str(args.get("query", "")), max(1, min(int(args.get("k", 5)), 20))
        hits = await asyncio.to_thread(index().search, ctx.user_id, ctx.session_id, query, k)
        return {"query": query, "hits": [hit_citation(h) for h in hits]}

    def schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}

    which = {"file_id": {"type": "string", "description": "The file's id from list_files."},
             "name": {"type": "string", "description": "Or its name: the newest version."}}  # fmt: skip
    return {
        "list_files": Tool("list_files", "List this session's files: id, name, version, type, size.",
                           schema({}, []), list_files),
        "read_file": Tool("read_file", "Read a file of this session as text (text, Markdown, JSON, PDF, HTML).",
                          schema({**which, "max_chars": {"type": "integer", "minimum": 1, "maximum": MAX_READ_CHARS}}, []),
                          read_file),
        "write_file": Tool("write_file", "Write a text file into this session's workspace; an existing name gets "
                           "a new version.", schema({"name": {"type": "string"}, "content": {"type": "string"}},
                                                    ["name", "content"]), write_file),
        "search_files": Tool("search_files", "Search the text of this session's files (indexed on first use). "
                             "Returns passages with the file's name.", schema(
                                 {"query": {"type": "string"}, "k": {"type": "integer", "minimum": 1, "maximum": 20}},
                                 ["query"]), search_files),
    }  # fmt: skip
