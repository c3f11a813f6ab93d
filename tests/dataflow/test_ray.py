"""RemoteEnvironment on a local Ray cluster: keys, windows and error policies as on threads."""

from __future__ import annotations

from typing import Any

import pytest

from sage_platform.dataflow import LocalEnvironment, MapFunction, OperatorError, RemoteEnvironment

RAY = {"num_cpus": 2}


def keyed_windows(env: Any) -> list[Any]:
    # One key goes to one worker, which keeps its order: the windows are the same whatever the timing.
    (env.from_batch([{"k": n % 3, "n": n} for n in range(60)])
        .keyby("k")
        .map(lambda r: {**r, "n2": r["n"] * r["n"]}, parallelism=2, batch_size=4)
        .filter(lambda r: r["n"] % 5 != 0)
        .keyby("k")
        .batch(size=4))  # fmt: skip
    result = env.submit()
    return sorted((w["key"], [r["n2"] for r in w["records"]]) for w in result.outputs)


def test_keyed_windows_equal_local() -> None:
    local = keyed_windows(LocalEnvironment("windows"))
    assert len(local) == 12 and local == keyed_windows(RemoteEnvironment("windows", RAY))


class Picky(MapFunction):
    def execute(self, data: Any) -> Any:
        if data == 13:
            raise ValueError("unlucky")
        return data


def test_error_policies_on_ray() -> None:
    env = RemoteEnvironment("skip", RAY)
    env.from_batch(range(20)).map(Picky, on_error="skip", parallelism=2, batch_size=5)
    result = env.submit()
    assert sorted(result.outputs) == [n for n in range(20) if n != 13]
    assert [(s.operator, s.record, s.error) for s in result.skipped] == [("Picky", 13, "ValueError: unlucky")]
    env = RemoteEnvironment("fail", RAY)
    env.from_batch(range(20)).map(Picky)
    with pytest.raises(OperatorError, match="Picky failed on 13: ValueError: unlucky"):
        env.submit()
