"""The platform parts library operators share: one ``Platform`` per distinct settings, per process.

Operators take platform settings under ``"settings"`` in their config (``{"settings": {"retrieval_k": 5}}``);
the rest come from ``SAGE_*`` as everywhere else. Workers of one process share the parts (one model load).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from sage_platform.config import Settings
from sage_platform.platform import Platform
from sage_platform.retrieval.types import Hit

_HUB_PREFIX = "sentence-transformers/"  # the original's model names; the packaged model has the bare name
_lock = threading.Lock()
_platforms: dict[str, Platform] = {}


def already_answered(record: Mapping[str, Any]) -> bool:
    """A record that carries a kept answer (``reused``): promptors and generators pass it on untouched."""
    return bool(record.get("reused"))


def platform_for(config: Mapping[str, Any]) -> Platform:
    """``config["platform"]`` when given (in-process callers that hold one, like the assets), else the
    shared platform for ``config["settings"]`` and the environment."""
    given = config.get("platform")
    if isinstance(given, Platform):
        return given
    overrides = dict(config.get("settings") or {})
    model = config.get("model")
    if isinstance(model, str) and "embedding_model" not in overrides:
        overrides["embedding_model"] = model.removeprefix(_HUB_PREFIX)
    # The environment is part of the key: settings not overridden come from SAGE_* at creation.
    environment = sorted((k, v) for k, v in os.environ.items() if k.startswith("SAGE_"))
    key = json.dumps([overrides, environment], sort_keys=True, default=str)
    with _lock:
        if key not in _platforms:
            _platforms[key] = Platform(Settings(**overrides))
        return _platforms[key]


def hit_record(hit: Hit) -> dict[str, Any]:
    return {"chunk_id": hit.chunk_id, "doc_id": hit.doc_id, "score": hit.score, "text": hit.text,
            "metadata": hit.metadata}  # fmt: skip


def record_hit(record: Mapping[str, Any]) -> Hit:
    return Hit(record["chunk_id"], record["doc_id"], float(record.get("score", 0.0)), record["text"],
               dict(record.get("metadata") or {}))  # fmt: skip


def close_platforms() -> None:
    """Close the cached platforms' database pools (tests, and long-lived processes that switch databases)."""
    with _lock:
        for platform in _platforms.values():
            if "db" in platform.__dict__:
                platform.db.close()
        _platforms.clear()
