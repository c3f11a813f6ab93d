"""A fast OpenAI-compatible streaming stub for the load benchmark: 20 tokens per answer.

Runs in its own process (aiohttp), so the server under test and the load generator get the
other core. ``python bench/llm_stub_server.py PORT [TOKENS]``.

For the agent modes it answers as a model would: a planning request (system prompt "Plan the
work") gets a two-step JSON plan; a team lead's first call (system prompt "You lead a team")
delegates to its first two team members at once. ``GET /stats`` gives the requests answered.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web


def _chunks(model: str, tokens: int) -> list[bytes]:
    def event(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
        body = {"id": "s", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        if usage:
            body["usage"] = usage
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    out = [event({"role": "assistant", "content": ""})]
    out += [event({"content": f"tok{i} "}) for i in range(tokens)]
    out.append(event({}, "stop"))
    out.append(event({}, usage={"prompt_tokens": 30, "completion_tokens": tokens, "total_tokens": 30 + tokens}))
    out.append(b"data: [DONE]\n\n")
    return out


PLAN = json.dumps({"analysis": "two parts", "steps": ["look up the first part", "look up the second part"]})


def _event(delta: dict, finish: str | None = None) -> bytes:
    body = {"id": "s", "object": "chat.completion.chunk", "created": 0, "model": "stub",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _scripted(body: dict) -> list[bytes] | None:
    """The planner's plan, or a team lead's two delegations; None: the plain answer."""
    messages = body.get("messages") or []
    system = str(messages[0].get("content") or "") if messages and messages[0].get("role") == "system" else ""
    if "Plan the work" in system:
        return [_event({"content": PLAN}), _event({}, "stop"), b"data: [DONE]\n\n"]
    if "You lead a team" in system and messages[-1].get("role") != "tool":
        members = [t["function"]["name"] for t in body.get("tools") or []][:2]
        calls = [{"index": i, "id": f"call_{i}", "type": "function",
                  "function": {"name": name, "arguments": json.dumps({"task": f"part {i + 1}"})}}
                 for i, name in enumerate(members)]  # fmt: skip
        return [_event({"tool_calls": calls}), _event({}, "tool_calls"), b"data: [DONE]\n\n"]
    return None


async def completions(request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    request.app["answered"] += 1
    scripted = _scripted(json.loads(raw)) if b"Plan the work" in raw or b"You lead a team" in raw else None
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for chunk in scripted or request.app["chunks"]:
        await response.write(chunk)
    await response.write_eof()
    return response


async def stats(request: web.Request) -> web.Response:
    return web.json_response({"answered": request.app["answered"]})


def main() -> None:
    port = int(sys.argv[1])
    tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    app = web.Application()
    app["chunks"] = _chunks("stub", tokens)
    app["answered"] = 0
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
