"""A small OpenAI-compatible server on loopback: the stand-in for LLMs and embedding APIs.

- ``POST /v1/embeddings`` returns deterministic vectors derived from each input's hash, listed in
  reverse order (the API promises an ``index`` on each item, not the order);
- ``POST /v1/chat/completions`` answers with the first context passage's document id and
  the question, so tests can see the prompt really carried the retrieved context.
Every request body is recorded in ``requests``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests._http import send_json, serve

DIMENSION = 16


def stub_vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(byte - 128) / 128 for byte in digest[:DIMENSION]]


@dataclass
class StubServer:
    url: str
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@contextmanager
def openai_stub() -> Iterator[StubServer]:
    state = StubServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            state.requests.append((self.path, body))
            if self.path.endswith("/embeddings"):
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                payload: dict[str, Any] = {
                    "object": "list",
                    "model": body["model"],
                    "data": [
                        {"object": "embedding", "index": i, "embedding": stub_vector(t)} for i, t in enumerate(inputs)
                    ][::-1],
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                }
            elif self.path.endswith("/chat/completions"):
                prompt = body["messages"][-1]["content"]
                source = re.search(r"\[1\] \(([^)]*)\)", prompt)
                question = prompt.rsplit("Question: ", 1)[-1]
                content = f"stub answer from {source.group(1) if source else 'nothing'} to: {question}"
                payload = {
                    "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }  # fmt: skip
            else:
                self.send_error(404)
                return
            send_json(self, 200, payload)

    with serve(Handler) as url:
        state.url = url + "/v1"
        yield state
