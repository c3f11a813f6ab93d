"""The least an agent server's streaming request can cost on this stack, for ``bench/load.py --floor``.

Two ASGI apps served by the same uvicorn (uvloop, httptools, no access log) as ``sage serve``, answering
``POST /api/stream`` with lines shaped like the agent server's (each a stream message, the last a saved
``stream_end``), so that the load generator counts them as it counts the server's:

- ``bare``: reads the body, sends 23 lines in three writes; no model, no database, no framework;
- ``model_call``: the same, with one streamed call to the stub model through the platform's own client
  (``ChatEndpoint``), a line per text delta: the first written at once, the rest with the ending (fewer
  writes than a live stream makes, so this is a floor).

    uvicorn bench.floor_apps:bare      # or bench.floor_apps:model_call (SAGE_FLOOR_LLM_URL=http://…/v1)
"""

from __future__ import annotations

import json
import os
from typing import Any

from sage_platform.agent.chat_http import ChatEndpoint
from sage_platform.agent.messages import encode, new_id, stream_end, stream_message

Scope = dict[str, Any]
TOKENS = 20


def _token(session: str, text: str) -> bytes:
    return encode(stream_message("assistant_text", session, content=text, agent_name="main", message_id="m"))


def _ending(session: str, answer: str) -> bytes:
    final = stream_message("final_answer", session, content=answer, agent_name="main")
    usage = stream_message("token_usage", session, content={"prompt_tokens": 9, "completion_tokens": TOKENS})
    return encode(final) + encode(usage) + encode(stream_end(session, TOKENS + 2))


async def _body(receive: Any) -> dict[str, Any]:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body: dict[str, Any] = json.loads(b"".join(chunks))
    return body


async def _ready(scope: Scope, send: Any) -> bool:
    """A POST is a request to stream; anything else (the bench's readiness GET) gets an empty 200."""
    if scope["type"] != "http":
        return False
    if scope["method"] == "POST":
        return True
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})
    return False


async def _start(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-ndjson")]})


async def bare(scope: Scope, receive: Any, send: Any) -> None:
    if not await _ready(scope, send):
        return
    await _body(receive)
    session = new_id()
    await _start(send)
    await send({"type": "http.response.body", "body": _token(session, "word "), "more_body": True})
    rest = b"".join(_token(session, "word ") for _ in range(TOKENS - 1))
    await send({"type": "http.response.body", "body": rest, "more_body": True})
    await send({"type": "http.response.body", "body": _ending(session, "word " * TOKENS)})


_endpoint: ChatEndpoint | None = None


async def model_call(scope: Scope, receive: Any, send: Any) -> None:
    global _endpoint
    if not await _ready(scope, send):
        return
    request = await _body(receive)
    if _endpoint is None:
        _endpoint = ChatEndpoint(os.environ["SAGE_FLOOR_LLM_URL"], api_key="unused", timeout=60, max_retries=0)
    session = new_id()
    body = {"model": "stub", "messages": request["messages"], "stream": True, "stream_options": {"include_usage": True}}
    text: list[str] = []
    held: list[bytes] = []
    await _start(send)
    async with _endpoint.stream(body) as lines:
        async for line in lines:
            if not line.startswith(b"data: {"):
                continue
            chunk = json.loads(line[6:])
            delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
            if delta.get("content"):
                text.append(delta["content"])
                if len(text) == 1:
                    await send({"type": "http.response.body", "body": _token(session, text[0]), "more_body": True})
                else:
                    held.append(_token(session, delta["content"]))
    await send({"type": "http.response.body", "body": b"".join(held) + _ending(session, "".join(text))})
