"""Deterministic crash points, so tests can SIGKILL a run in the middle of an asset.

``SAGE_CRASH_AT=chunk_embeddings.batch:2`` kills the process the second time that point is passed;
``...:2:INT`` sends it SIGINT there instead (a Ctrl-C at a known moment). Unset (always, outside tests)
it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def crash_point(name: str) -> None:
    spec = os.environ.get("SAGE_CRASH_AT")
    if not spec:
        return
    target, _, rest = spec.partition(":")
    if target != name:
        return
    count, _, signal_name = rest.partition(":")
    _hits[name] += 1
    if _hits[name] == int(count or 1):
        os.kill(os.getpid(), signal.Signals[f"SIG{signal_name or 'KILL'}"])
