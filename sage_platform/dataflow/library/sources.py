"""Sources: files, JSONL, SQL tables, HTTP APIs and streams (iterators, queues, the inbox folder).

Usage::

    env.from_source(FileSource, {"file_path": "questions.txt"})          # {"query": line} per line
    env.from_source(FileSource, {"file_path": "golden.jsonl"})           # one record per JSON object
    env.from_source(TableSource, {"query": "SELECT question AS query FROM eval_questions"})
    env.from_source(StreamSource, {"queue": q}), env.submit(autostop=False)
"""

from __future__ import annotations

import csv
import json
import queue
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from sage_platform.dataflow.functions import PENDING, BatchFunction, SourceFunction

_TEXT_FIELD = "query"


class _IteratorSource(BatchFunction):
    """A bounded source over ``records()``; subclasses only say how to read."""

    def open(self) -> None:
        self._records = self.records()

    def records(self) -> Iterator[Any]:
        raise NotImplementedError

    def execute(self, data: Any = None) -> Any:
        return next(self._records, None)


class FileSource(_IteratorSource):
    """One record per non-empty line of ``file_path``: ``.txt`` → ``{field: line}`` (``field`` default
    ``query``), ``.jsonl`` → the object, ``.csv`` → a dict per row (header first). ``format`` overrides
    the suffix."""

    @classmethod
    def fields_out(cls, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({config.get("field", _TEXT_FIELD)}) if _format(config) == "txt" else None

    def records(self) -> Iterator[Any]:
        path = Path(self.config["file_path"])
        kind = _format(self.config)
        with path.open(encoding="utf-8", newline="") as handle:
            if kind == "csv":
                yield from csv.DictReader(line for line in handle if line.strip())
                return
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                if kind == "jsonl":
                    yield _json_line(path, number, line)
                else:
                    yield {self.config.get("field", _TEXT_FIELD): line.strip()}


class JSONLSource(FileSource):
    """``FileSource`` for JSON Lines whatever the suffix: one record per object."""

    @classmethod
    def fields_out(cls, config: Mapping[str, Any]) -> frozenset[str] | None:
        return None

    def records(self) -> Iterator[Any]:
        self.config["format"] = "jsonl"
        return super().records()


def _format(config: Mapping[str, Any]) -> str:
    kind = config.get("format") or Path(str(config.get("file_path", ""))).suffix.lstrip(".").lower()
    return kind if kind in ("jsonl", "csv") else "txt"


def _json_line(path: Path, number: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None


class TableSource(_IteratorSource):
    """Rows of any SQL ``query`` (with ``params``) through SQLAlchemy, as dicts; ``url`` defaults to the
    platform's database. Rows stream in ``fetch_size`` pieces, so a large table never sits in memory."""

    def records(self) -> Iterator[Any]:
        from sqlalchemy import create_engine, text

        url = self.config.get("url") or _platform_url(self.config)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=int(self.config.get("fetch_size", 500)))
                for row in result.execute(text(self.config["query"]), dict(self.config.get("params") or {})):
                    yield dict(row._mapping)
        finally:
            engine.dispose()


def _platform_url(config: Mapping[str, Any]) -> str:
    from sage_platform.dataflow.library._platform import platform_for
    from sage_platform.db.urls import sqlalchemy_url

    return sqlalchemy_url(platform_for(config).db.url)


class APISource(_IteratorSource):
    """Records from an HTTP API: GET ``url`` returning a JSON list (or the list under ``records_key``),
    or JSON Lines. ``headers`` are sent as given; a non-2xx answer fails the source with its status."""

    def records(self) -> Iterator[Any]:
        import urllib.error
        import urllib.request

        url = str(self.config["url"])
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"APISource: {url!r} is not an http(s) URL")
        request = urllib.request.Request(url, headers=dict(self.config.get("headers") or {}))
        try:
            with urllib.request.urlopen(request, timeout=float(self.config.get("timeout", 30))) as response:
                kind, text = response.headers.get("content-type", ""), response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"APISource: GET {url} answered {error.code}") from None
        if "jsonl" in kind or self.config.get("format") == "jsonl":
            yield from (json.loads(line) for line in text.splitlines() if line.strip())
            return
        body = json.loads(text)
        key = self.config.get("records_key")
        items = body[key] if key else body
        if not isinstance(items, list):
            raise ValueError(f"APISource: {self.config['url']} did not return a list{f' under {key!r}' if key else ''}")
        yield from items


class StreamSource(SourceFunction):
    """An unbounded source: ``iterator`` (any iterator), ``queue`` (a ``queue.Queue``; put
    ``StreamSource.CLOSE`` to end it) or ``inbox`` (a folder: each new or changed file once, as
    ``{"path", "text"}``). Between records it answers ``PENDING``, so ``submit(autostop=False)`` keeps it
    running until stopped."""

    CLOSE: ClassVar[object] = object()
    poll_seconds: ClassVar[float] = 0.2

    def open(self) -> None:
        self._iterator: Iterator[Any] | None = iter(self.config["iterator"]) if "iterator" in self.config else None
        self._queue: queue.Queue[Any] | None = self.config.get("queue")
        self._inbox = Path(self.config["inbox"]) if "inbox" in self.config else None
        self._seen: dict[Path, tuple[float, int]] = {}
        self._ready: list[dict[str, Any]] = []
        if sum(x is not None for x in (self._iterator, self._queue, self._inbox)) != 1:
            raise ValueError("StreamSource takes exactly one of 'iterator', 'queue' or 'inbox'")

    def execute(self, data: Any = None) -> Any:
        if self._iterator is not None:
            return next(self._iterator, None)
        if self._queue is not None:
            try:
                item = self._queue.get(timeout=self.poll_seconds)
            except queue.Empty:
                return PENDING
            return None if item is self.CLOSE else item
        return self._next_inbox_file()

    def _next_inbox_file(self) -> Any:
        if not self._ready:
            assert self._inbox is not None
            for path in sorted(p for p in self._inbox.rglob("*") if p.is_file() and not p.name.startswith(".")):
                stat = path.stat()
                if self._seen.get(path) != (stat.st_mtime, stat.st_size):
                    self._seen[path] = (stat.st_mtime, stat.st_size)
                    self._ready.append(
                        {"path": str(path.relative_to(self._inbox)), "text": path.read_text(errors="replace")}
                    )
            if not self._ready:
                return PENDING
        return self._ready.pop(0)
