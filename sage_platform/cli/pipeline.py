"""``sage pipeline run TARGET``: run a dataflow pipeline locally, as a Dagster job, or on Ray.

TARGET is a Python file that builds an environment at module level (``env = LocalEnvironment(...)``
and its chain; ``env.submit()`` under ``if __name__ == "__main__":``), a YAML pipeline (docs/dataflow.md),
or ``rag_answers``, the platform's own answering pipeline. The file's pipeline runs unchanged in the environment ``--env`` names.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path
from typing import Any

from sage_platform.cli._flags import EMBEDDING, LLM, RETRIEVAL, STORAGE, Commands, add_settings, settings_from

ENVIRONMENTS = ("local", "dagster", "ray")


def add_command(commands: Commands) -> None:
    group = commands.add_parser("pipeline", help="run a dataflow pipeline (local threads, Dagster job, or Ray)")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    run_parser = actions.add_parser("run", help="run the pipeline a Python file builds, or rag_answers",
                                    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    run_parser.add_argument("target", help="PATH.py, PATH.yaml, or rag_answers")
    run_parser.add_argument("--env", choices=ENVIRONMENTS, default="local", help="where to run it (default local)")
    run_parser.add_argument("--num-cpus", type=int, help="Ray: CPUs of the local cluster (RAY_ADDRESS: a real one)")
    run_parser.add_argument("--partition-size", type=int, default=100, help="Dagster: records per partition")
    run_parser.add_argument("--queue-size", type=int, default=64, help="local and Ray: records per queue")
    add_settings(
        run_parser, STORAGE + EMBEDDING + RETRIEVAL + LLM, title="settings (flag > SAGE_* environment > default)"
    )
    run_parser.set_defaults(func=run)


def environment_class(name: str) -> Any:
    from sage_platform import dataflow

    return {"local": dataflow.LocalEnvironment, "dagster": dataflow.DagsterEnvironment,
            "ray": dataflow.RemoteEnvironment}[name]  # fmt: skip


def load_pipeline(target: str, settings: Any) -> Any:
    from sage_platform.dataflow import BaseEnvironment, LocalEnvironment

    if target == "rag_answers":
        from sage_platform.dataflow.rag_answers import build_rag_answers

        env = LocalEnvironment("rag_answers")
        build_rag_answers(env, settings)
        return env.pipeline
    path = Path(target)
    if not path.is_file():
        raise FileNotFoundError(f"{target}: no such file (give a PATH.py, PATH.yaml or rag_answers)")
    if path.suffix in (".yaml", ".yml"):
        from sage_platform.dataflow.yaml_spec import pipeline_from_yaml

        return pipeline_from_yaml(path)
    namespace = runpy.run_path(str(path), run_name="__sage_pipeline__")
    found = [v for v in namespace.values() if isinstance(v, BaseEnvironment) and v.pipeline.stages]
    if len(found) != 1:
        raise ValueError(f"{target} must build exactly one environment at module level; it built {len(found)}")
    return found[0].pipeline


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, for_children=True)  # operators, Dagster steps and Ray workers read SAGE_*
    pipeline = load_pipeline(args.target, settings)
    config: dict[str, Any] = {"queue_size": args.queue_size, "partition_size": args.partition_size}
    if args.num_cpus:
        config["num_cpus"] = args.num_cpus
    result = environment_class(args.env).for_pipeline(pipeline, config).submit()
    print(result.table(), file=sys.stderr)
    for skipped in result.skipped[:10]:
        print(f"skipped by {skipped.operator}: {skipped.error}", file=sys.stderr)
    return 0
