"""A scripted OpenAI-compatible chat server on loopback: the stand-in LLM for the agent server.

The last user message carries the script, in double brackets:

- ``[[tool:NAME {json}]]`` (repeatable): first answer with those tool calls (in parallel), then,
  once tool results are in the conversation, answer ``tool results: <results>``;
- ``[[status:500]]``: answer HTTP 500; ``[[status:429x2]]``: 429 twice, then answer normally;
- ``[[slow:S]]``: wait S seconds before answering (to trip client timeouts);
- ``[[truncate]]``: stream two words, then end the response with no ``finish_reason`` and no ``[DONE]``;
- ``[[hold]]``: stream two words, then hold the stream open until ``release()`` (or 30 s);
- ``[[reason]]``: stream a reasoning_content delta first;
- ``[[stream_error]]``: stream two words, then an error event (as servers do when they fail mid-answer);
- ``[[plan {json}]]``: a planning request (its system prompt says "Plan the work") gets the JSON as its
  answer; ``[[replan {json}]]`` answers a re-planning request (its system prompt says "REPLAN").

``inject[marker] = "[[...]]"`` adds scripts to every request whose last user message or system prompt
holds ``marker`` (for messages the agent writes itself: plan steps, sub-agents' tasks).

Otherwise it streams ``stub answer to: <question>`` word by word. Non-streaming requests (the
agent's summariser) get ``SUMMARY(<n> chars)``. Every request body is kept in ``requests``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests._http import send_json, serve

SCRIPT = re.compile(r"\[\[(\w+)(?::([^\]\s]+))?(?: (\{.*?\}))?\]\]")


@dataclass
class ChatStub:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)  # each request's Authorization header
    failures: dict[str, int] = field(default_factory=dict)
    held: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    inject: dict[str, str] = field(default_factory=dict)

    def release(self) -> None:
        self.held.set()


def _last_user(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            content = message.get("content") or ""
            return content if isinstance(content, str) else json.dumps(content)
    return ""


@contextmanager
def chat_stub() -> Iterator[ChatStub]:
    state = ChatStub()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            state.requests.append(body)
            state.authorizations.append(self.headers.get("Authorization", ""))
            question = _last_user(body["messages"])
            first = body["messages"][0]
            system = str(first.get("content") or "") if first["role"] == "system" else ""
            question += "".join(f" {extra}" for marker, extra in state.inject.items() if marker in question + system)
            script = SCRIPT.findall(question)
            for name, arg, _ in script:
                if name == "status":
                    code, _, times = arg.partition("x")
                    seen = state.failures.get(question, 0)
                    if not times or seen < int(times):
                        state.failures[question] = seen + 1
                        message = f"scripted {code} from the stub's internal host db-7.internal:5432"
                        self._json(int(code), {"error": {"message": message, "type": "stub"}})
                        return
                if name == "slow":
                    time.sleep(float(arg))
            if not body.get("stream"):
                text = body["messages"][-1]["content"]
                self._json(200, {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": f"SUMMARY({len(text)} chars)"}}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})  # fmt: skip
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            last = body["messages"][-1]
            wanted = "replan" if "REPLAN" in system else "plan"
            plan = next((payload for name, _, payload in script if name == wanted), None)
            if plan and "Plan the work" in system:
                self._chunk(body, {"content": plan})
                self._finish(body, "stop")
                return
            calls = [(arg, payload or "{}") for name, arg, payload in script if name == "tool"]
            if any(n == "reason" for n, _, _ in script):
                self._chunk(body, {"reasoning_content": "thinking…"})
            if calls and last["role"] != "tool":
                for i, (tool, payload) in enumerate(calls):
                    self._chunk(body, {"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                                        "function": {"name": tool, "arguments": ""}}]})  # fmt: skip
                    self._chunk(body, {"tool_calls": [{"index": i, "function": {"arguments": payload}}]})
                self._finish(body, "tool_calls")
                return
            if calls:
                results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
                words = ["tool ", "results: ", *(f"{r} " for r in results)]
            else:
                words = ["stub ", "answer ", "to: ", *(w + " " for w in SCRIPT.sub("", question).split())]
            for i, word in enumerate(words):
                self._chunk(body, {"content": word})
                if i == 1 and any(n == "stream_error" for n, _, _ in script):
                    self._write(b'data: {"error": {"message": "model overloaded", "type": "server_error"}}\n\n')
                    self._write(b"")
                    return
                if i == 1 and any(n == "truncate" for n, _, _ in script):
                    self._write(b"")  # the connection's stream ends: no finish_reason, no [DONE]
                    return
                if i == 1 and any(n == "hold" for n, _, _ in script):
                    state.holding.set()
                    state.held.wait(30)
            self._finish(body, "stop")

        def _write(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _chunk(self, body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> None:
            event = {"id": "s", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
            self._write(f"data: {json.dumps(event)}\n\n".encode())

        def _finish(self, body: dict[str, Any], reason: str) -> None:
            self._chunk(body, {}, reason)
            usage = {"id": "s", "object": "chat.completion.chunk", "created": 0, "model": body["model"], "choices": [],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}  # fmt: skip
            self._write(f"data: {json.dumps(usage)}\n\n".encode())
            self._write(b"data: [DONE]\n\n")
            self._write(b"")

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            send_json(self, status, payload)

    with serve(Handler) as url:
        state.url = url + "/v1"
        try:
            yield state
        finally:
            state.release()
