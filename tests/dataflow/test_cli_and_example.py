"""`sage pipeline run` runs the shipped example unchanged in each environment, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sage_platform.dataflow import WiringError
from sage_platform.platform import Platform

REPO = Path(__file__).resolve().parents[2]
SAGE = [sys.executable, "-m", "sage_platform.cli"]


@pytest.mark.parametrize("environment", ["local", "dagster"])
def test_the_example_runs_from_the_cli(platform_env: Platform, environment: str, tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("")
    done = subprocess.run([*SAGE, "pipeline", "run", str(REPO / "examples/rag_pipeline.py"), "--env", environment],
                          capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    asked = (REPO / "examples/questions.txt").read_text().splitlines()
    assert [line[3:] for line in done.stdout.splitlines() if line.startswith("Q: ")] == asked or environment != "local"
    assert sorted(line[3:] for line in done.stdout.splitlines() if line.startswith("Q: ")) == sorted(asked)
    assert f"rag_pipeline on {environment}" in done.stderr
    assert "TerminalSink" in done.stderr


def test_the_yaml_form_gives_the_same_answers(platform_env: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    from sage_platform.cli import main

    outputs = {}
    for name in ("rag_pipeline.py", "rag_pipeline.yaml"):
        assert main(["pipeline", "run", str(REPO / "examples" / name)]) == 0
        outputs[name] = capsys.readouterr().out
    assert outputs["rag_pipeline.py"].count("Q: ") == 5 and outputs["rag_pipeline.py"] == outputs["rag_pipeline.yaml"]


def test_a_bad_yaml_step_names_file_and_step(tmp_path: Path) -> None:
    from sage_platform.dataflow.yaml_spec import SpecError, pipeline_from_yaml

    spec = tmp_path / "p.yaml"
    spec.write_text("source: {from_batch: FileSource, config: {file_path: q.txt}}\nsteps:\n  - map: QAPromptr\n")
    with pytest.raises(SpecError, match=r"p.yaml step 1: unknown function 'QAPromptr'"):
        pipeline_from_yaml(spec)
    spec.write_text("source: {from_source: FileSource, config: {file_path: q.txt}}\nsteps:\n  - map: QAPromptor\n")
    with pytest.raises(WiringError, match="QAPromptor needs field"):
        pipeline_from_yaml(spec)


def test_a_file_without_an_environment_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "nothing.py"
    script.write_text("x = 1\n")
    done = subprocess.run([*SAGE, "pipeline", "run", str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "must build exactly one environment at module level; it built 0" in done.stderr
