"""Run a Great Expectations 1.x suite over a pandas frame and keep what people need to see:
which expectation failed, how many rows, and the first failing rows.

dagster-ge is pinned below GX 1.0, so the platform calls GX 1.x directly.

Usage::

    result = validate_frame("documents", frame, [gxe.ExpectColumnValuesToBeUnique(column="doc_id")], id_column="doc_id")
    result.success, result.failures[0].rows
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

MAX_FAILING_ROWS = 20
_VALIDATING = threading.Lock()  # the process's one context serves one validation at a time


@dataclass
class ExpectationFailure:
    expectation: str
    column: str | None
    unexpected_count: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # the first failing rows


@dataclass
class QualityResult:
    suite: str
    evaluated: int
    rows: int
    failures: list[ExpectationFailure]
    scope: str = "whole table"  # or "rows written since the last pass"

    @property
    def success(self) -> bool:
        return not self.failures


@functools.cache  # one per process: building one costs about 25 ms
def _context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no bars in logs and terminals
        return context


@functools.cache
def _batch_definition(suite_name: str) -> Any:
    source = _context().data_sources.add_pandas(name=f"sage_{suite_name}")
    return source.add_dataframe_asset(name=suite_name).add_batch_definition_whole_dataframe(suite_name)


def load_great_expectations() -> None:
    """Import Great Expectations and build its context (seconds, once per process): the warm worker's warm-up."""
    _context()


def validate_frame(
    suite_name: str, frame: pd.DataFrame, expectations: Sequence[Any], *, id_column: str
) -> QualityResult:
    """Validate ``frame`` against ``expectations``; failing rows are named by ``id_column``."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=suite_name, expectations=list(expectations))
    with _VALIDATING, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = _batch_definition(suite_name).get_batch(batch_parameters={"dataframe": frame})
        validation = batch.validate(suite, result_format="BOOLEAN_ONLY")
        if not validation.success:  # naming the failing rows costs half as much again: only then
            validation = batch.validate(
                suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [id_column]}
            )
    failures = []
    for outcome in validation.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        column = config.kwargs.get("column")
        result = outcome.result or {}
        indexes = result.get("unexpected_index_list") or []
        rows = _failing_rows(frame, indexes, id_column, column)
        count = int(result.get("unexpected_count") or len(indexes) or 0)
        if not rows and "observed_value" in result:
            rows = [
                {"observed": result["observed_value"], **{k: v for k, v in config.kwargs.items() if k != "batch_id"}}
            ]
        failures.append(ExpectationFailure(config.type, column, count, rows))
    return QualityResult(suite_name, len(expectations), len(frame), failures)


def _failing_rows(frame: pd.DataFrame, indexes: list[Any], id_column: str, column: str | None) -> list[dict[str, Any]]:
    ids = [entry.get(id_column) if isinstance(entry, dict) else entry for entry in indexes[:MAX_FAILING_ROWS]]
    if not ids:
        return []
    subset = frame[frame[id_column].isin(ids)].head(MAX_FAILING_ROWS)
    columns = [id_column] + ([column] if column and column != id_column else [])
    return [{key: _short(value) for key, value in row.items()} for row in subset[columns].to_dict("records")]


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 80:
        return value[:79] + "…"
    return value
