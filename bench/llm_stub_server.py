"""A fast OpenAI-compatible streaming stub for the load benchmark: 20 tokens per answer.

Runs in its own process (aiohttp), so the server under test and the load generator get the
other core. ``python bench/llm_stub_server.py PORT [TOKENS]``.
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


async def completions(request: web.Request) -> web.StreamResponse:
    await request.read()  # the body is not needed, only consumed
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for chunk in request.app["chunks"]:
        await response.write(chunk)
    await response.write_eof()
    return response


def main() -> None:
    port = int(sys.argv[1])
    tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    app = web.Application()
    app["chunks"] = _chunks("stub", tokens)
    app.router.add_post("/v1/chat/completions", completions)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
