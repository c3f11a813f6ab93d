"""``validate_frame``: one Great Expectations context per process, each validation on its own frame."""

from __future__ import annotations

import threading

import great_expectations.expectations as gxe
import pandas as pd

from sage_platform.quality.gx import QualityResult, validate_frame


def _validate(lengths: list[int]) -> QualityResult:
    frame = pd.DataFrame({"doc_id": [f"d{i}" for i in range(len(lengths))], "text_length": lengths})
    rules = [gxe.ExpectColumnValuesToBeBetween(column="text_length", min_value=1)]
    return validate_frame("documents", frame, rules, id_column="doc_id")


def test_each_validation_of_a_suite_sees_only_its_own_frame() -> None:
    failing = _validate([5, 0, 7])
    assert [failure.rows for failure in failing.failures] == [[{"doc_id": "d1", "text_length": 0}]]
    assert _validate([5, 6]).success  # the same suite's kept batch definition, a new frame
    again = _validate([0, 3])
    assert [failure.rows for failure in again.failures] == [[{"doc_id": "d0", "text_length": 0}]]


def test_validations_from_several_threads_each_get_their_own_result() -> None:
    results: dict[int, QualityResult] = {}

    def validate(n: int) -> None:
        results[n] = _validate([n % 2] * (n + 1))  # odd n: every row passes; even n: every row fails

    threads = [threading.Thread(target=validate, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {n: result.success for n, result in results.items()} == {n: n % 2 == 1 for n in range(6)}
    assert {n: result.failures[0].unexpected_count for n, result in results.items() if n % 2 == 0} == {
        0: 1,
        2: 3,
        4: 5,
    }
