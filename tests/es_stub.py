"""A recording stand-in for an Elasticsearch cluster on loopback (none can run on these machines).

It speaks just enough of the REST API for the official client: index creation, bulk, refresh,
count, aliases, delete, and ``_search`` with approximate cosine ``knn`` over what was bulk-loaded,
so the indexer's recall check runs for real: like Elasticsearch's HNSW, it examines only
``num_candidates`` documents (those whose sign-bit hash is nearest the query's) and ranks them exactly,
so a small ``num_candidates`` misses true neighbours. Every request is recorded as (method, path, body).
Other searches answer with ``canned_hits``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from tests._http import serve


@dataclass
class EsStub:
    url: str = ""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    indices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    aliases: dict[str, set[str]] = field(default_factory=dict)
    canned_hits: list[dict[str, Any]] = field(default_factory=list)

    def bodies(self, method: str, suffix: str) -> list[Any]:
        return [body for m, path, body in self.requests if m == method and path.endswith(suffix)]


_PLANES = np.random.default_rng(0).normal(size=(4096, 16)).astype(np.float32)  # sign-bit hash, 16 bits


def _knn(documents: dict[str, dict[str, Any]], clause: dict[str, Any]) -> list[dict[str, Any]]:
    if not documents:
        return []
    ids = list(documents)
    matrix = np.array([documents[i]["embedding"] for i in ids], dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    query = np.asarray(clause["query_vector"], dtype=np.float32)
    query /= np.linalg.norm(query)
    planes = _PLANES[: matrix.shape[1]]
    codes, code = matrix @ planes > 0, query @ planes > 0
    examined = np.argsort((codes != code).sum(axis=1), kind="stable")[: clause["num_candidates"]]
    scores = (1 + matrix[examined] @ query) / 2
    order = examined[np.argsort(-scores)[: clause["k"]]]
    return [{"_id": ids[i], "_score": float((1 + matrix[i] @ query) / 2), "_source": documents[ids[i]]} for i in order]


@contextmanager
def elasticsearch_stub() -> Iterator[EsStub]:
    state = EsStub()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if not raw:
                return None
            if urlsplit(self.path).path.endswith("/_bulk"):
                return [json.loads(line) for line in raw.splitlines() if line.strip()]
            return json.loads(raw)

        def _handle(self, method: str) -> None:
            path = urlsplit(self.path).path
            body = self._body()
            state.requests.append((method, path, body))
            parts = [p for p in path.split("/") if p]
            if not parts:
                return self._reply(200, {"version": {"number": "9.1.0"}, "tagline": "You Know, for Search"})
            if parts == ["_bulk"]:
                items = []
                i = 0
                while i < len(body):
                    ((op, meta),) = body[i].items()
                    index = state.indices.setdefault(meta["_index"], {})
                    if op == "delete":
                        index.pop(meta["_id"], None)
                        i += 1
                    else:
                        index[meta["_id"]] = body[i + 1]
                        i += 2
                    items.append({op: {"_index": meta["_index"], "_id": meta["_id"], "status": 200}})
                return self._reply(200, {"errors": False, "took": 1, "items": items})
            if parts == ["_aliases"]:
                for action in body["actions"]:
                    ((kind, spec),) = action.items()
                    members = state.aliases.setdefault(spec["alias"], set())
                    (members.add if kind == "add" else members.discard)(spec["index"])
                return self._reply(200, {"acknowledged": True})
            if parts[0] == "_alias":
                owners = {i: {"aliases": {parts[1]: {}}} for i in sorted(state.aliases.get(parts[1], set()))}
                return self._reply(200 if owners else 404, owners or {"error": "alias missing", "status": 404})
            name = parts[0]
            targets = sorted(state.aliases.get(name, set())) or [name]
            if len(parts) == 1 and method == "PUT":
                state.indices[name] = {}
                return self._reply(200, {"acknowledged": True, "index": name})
            if len(parts) == 1 and method == "DELETE":
                state.indices.pop(name, None)
                return self._reply(200, {"acknowledged": True})
            if parts[1:] in (["_refresh"], ["_settings"]):
                return self._reply(200, {"acknowledged": True, "_shards": {"total": 1, "successful": 1, "failed": 0}})
            if parts[1:] == ["_count"]:
                return self._reply(200, {"count": sum(len(state.indices.get(t, {})) for t in targets)})
            if parts[1:] == ["_search"]:
                documents = {k: v for t in targets for k, v in state.indices.get(t, {}).items()}
                hits = _knn(documents, body["knn"]) if "knn" in body else state.canned_hits
                return self._reply(
                    200, {"took": 1, "timed_out": False, "hits": {"total": {"value": len(hits)}, "hits": hits}}
                )
            return self._reply(404, {"error": f"stub does not know {method} {path}", "status": 404})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_HEAD(self) -> None:
            self._handle("HEAD")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    with serve(Handler) as url:
        state.url = url + ""
        yield state
