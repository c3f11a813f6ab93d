"""One Dagster instance kept for the runs this process makes in process (the warm worker makes many).

A new ``DagsterInstance`` opens its storage's connections and, on first use, looks its tables over
(which columns and indexes they have): a second small run in the process opens 4 connections to the
storage with the instance kept, 13 with a new one. The kept instance also remembers which columns
its tables have, which Dagster would otherwise ask the database before every asset event. It is kept
while Dagster's home, its configuration file and its storage stay the same; when one of them changes
(tests switch homes), the old instance is disposed of and a new one made.

Usage::

    instance = kept_instance()   # after prepare_dagster_home(settings)
    job.execute_in_process(instance=instance)
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance

_ENVIRONMENT = ("DAGSTER_HOME", "SAGE_DAGSTER_PG_URL", "SAGE_DAGSTER_COMPUTE_LOG_DIR")
_lock = threading.Lock()
_kept: tuple[tuple[str, ...], DagsterInstance] | None = None


def _identity() -> tuple[str, ...]:
    home = os.environ["DAGSTER_HOME"]
    config = Path(home, "dagster.yaml")
    return (*(os.environ.get(name, "") for name in _ENVIRONMENT), config.read_text() if config.exists() else "")


def kept_instance() -> DagsterInstance:
    """The instance for ``$DAGSTER_HOME``, made on first use and kept while its configuration holds."""
    global _kept
    from dagster import DagsterInstance

    identity = _identity()
    with _lock:
        if _kept is not None and _kept[0] == identity:
            return _kept[1]
        _dispose()
        instance = DagsterInstance.get()
        # dagster-postgres opens a connection per query by default (about 200 in a small run, 4 ms
        # each): one kept open, as the webserver keeps it, with no statement timeout for a run.
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=20)
        _remember_column_probes(instance)
        _kept = (identity, instance)
        return instance


# Dagster's SQL storages inspect their tables' columns before writes and reads: in a one-file run
# 41 looks at `asset_keys` (0.17 s) and 6 at `runs`. Columns change only by `dagster instance
# migrate`, with the platform stopped, so the kept instance remembers the answers.
_COLUMN_PROBES = {
    "event_log_storage": ("has_asset_key_col",),
    "run_storage": ("has_run_stats_index_cols", "has_backfill_id_column"),
}


def _remember_column_probes(instance: DagsterInstance) -> None:
    for storage_name, probes in _COLUMN_PROBES.items():
        storage = getattr(instance, storage_name)
        for probe in probes:
            ask = getattr(storage, probe, None)
            if callable(ask):  # a probe a later Dagster drops is simply not remembered
                setattr(storage, probe, functools.cache(ask))


def dispose_kept_instance() -> None:
    """Close the kept instance's connections (its database is about to go)."""
    with _lock:
        _dispose()


def _dispose() -> None:
    global _kept
    if _kept is not None:
        _kept[1].dispose()
        _kept = None
