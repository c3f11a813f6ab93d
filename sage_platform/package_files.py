"""Files shipped inside the package, found the same way from a source tree and from an installed wheel.

Usage::

    from sage_platform.package_files import SAMPLE_CORPUS_DIR
    settings = Settings(corpus_dir=SAMPLE_CORPUS_DIR)
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(*parts: str) -> Path:
    """A file or folder of the installed ``sage_platform`` package (never a zip: wheels install unpacked)."""
    return Path(str(files("sage_platform").joinpath(*parts)))


SAMPLE_CORPUS_DIR = package_path("sample", "corpus")
SAMPLE_EVAL_SET = package_path("sample", "sage_docs.jsonl")
# The repository's top-level dagster.yaml and workspace.yaml, which the package links to.
DAGSTER_YAML = package_path("instance", "dagster.yaml")
WORKSPACE_YAML = package_path("instance", "workspace.yaml")
CHAT_PAGE_DIR = package_path("server", "static")
MIGRATIONS_DIR = package_path("db", "migrations")
