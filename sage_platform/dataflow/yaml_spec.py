"""A pipeline written as YAML, for ``sage pipeline run PATH.yaml``: the same steps as the Python form.

Functions are the library's names (``DenseRetriever``) or ``package.module:Class``; step options
(``parallelism``, ``batch_size``, ``batch_wait``, ``on_error``, ``retries``, ``name``) sit beside
``config``. A relative ``file_path`` in a config is read from the YAML file's folder, as compose files do.

Usage (``examples/rag_pipeline.yaml``)::

    name: rag_pipeline
    source: {from_source: FileSource, config: {file_path: questions.txt}}
    steps:
      - map: DenseRetriever
        config: {model: sentence-transformers/all-MiniLM-L6-v2}
      - keyby: doc_id            # a field name
      - batch: {size: 8, seconds: 2}
      - sink: TerminalSink
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from sage_platform.dataflow.local import LocalEnvironment
from sage_platform.dataflow.pipeline import DataStream, Pipeline

STEP_METHODS = ("map", "flatmap", "filter", "sink")
OPTIONS = ("parallelism", "batch_size", "batch_wait", "on_error", "retries", "name")


class SpecError(ValueError):
    """A YAML pipeline that cannot be built; names the file and the step."""


def resolve(name: str, where: str) -> Any:
    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise SpecError(f"{where}: cannot import {name} ({error})") from None
    from sage_platform.dataflow import library

    if name not in library.__all__:
        raise SpecError(f"{where}: unknown function {name!r}; the library has {', '.join(library.__all__)}")
    return getattr(library, name)


def _config(step: dict[str, Any], base: Path) -> dict[str, Any]:
    config = dict(step.get("config") or {})
    path = config.get("file_path")
    if isinstance(path, str) and not Path(path).is_absolute():
        config["file_path"] = str(base / path)
    return config


def pipeline_from_yaml(path: Path) -> Pipeline:
    spec = yaml.safe_load(path.read_text())
    if not isinstance(spec, dict) or not isinstance(spec.get("source"), dict):
        raise SpecError(f"{path}: needs a mapping with 'source' (and 'steps')")
    env = LocalEnvironment(str(spec.get("name") or path.stem))
    source = spec["source"]
    method = next((m for m in ("from_source", "from_batch") if m in source), None)
    if method is None:
        raise SpecError(f"{path}: source needs from_source or from_batch")
    options = {k: v for k, v in source.items() if k in OPTIONS}
    stream: DataStream = getattr(env, method)(
        resolve(source[method], f"{path} source"), _config(source, path.parent), **options
    )
    for number, step in enumerate(spec.get("steps") or [], start=1):
        where = f"{path} step {number}"
        if not isinstance(step, dict):
            raise SpecError(f"{where}: a step is a mapping such as {{map: QAPromptor}}")
        if "keyby" in step:
            stream = stream.keyby(str(step["keyby"]))
        elif "batch" in step:
            window = step["batch"] or {}
            stream = stream.batch(size=window.get("size"), seconds=window.get("seconds"))
        else:
            kind = next((m for m in STEP_METHODS if m in step), None)
            if kind is None:
                raise SpecError(f"{where}: needs one of {', '.join(STEP_METHODS)}, keyby or batch")
            unknown = set(step) - {kind, "config", *OPTIONS}
            if unknown:
                raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
            options = {k: v for k, v in step.items() if k in OPTIONS}
            stream = getattr(stream, kind)(resolve(str(step[kind]), where), _config(step, path.parent), **options)
    return env.pipeline
