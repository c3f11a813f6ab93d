"""Is the installed Dagster family one release? Dagster ships its packages together, and a mix breaks.

The core packages share one version (``dagster 1.13.27`` with ``dagster-webserver 1.13.27``…); the
libraries carry the matching ``0.(minor+16).patch`` (``dagster-postgres 0.29.27``). A resolver that finds a
new ``dagster`` before its ``dagster-postgres`` is on the index backtracks to an ancient library instead.

Usage::

    problems = dagster_family_problems(installed_versions(DAGSTER_FAMILY))
    if problems:
        raise SystemExit("\\n".join(problems))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import metadata

DAGSTER_CORE = ("dagster", "dagster-webserver", "dagster-graphql", "dagster-pipes", "dagster-shared")
DAGSTER_LIBRARIES = ("dagster-postgres",)
DAGSTER_FAMILY = DAGSTER_CORE + DAGSTER_LIBRARIES
_LIBRARY_MINOR_OFFSET = 16  # 1.13.N pairs with 0.29.N


def installed_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Each distribution's installed version, or None where it is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def library_version_for(core_version: str) -> str:
    """The library version released with a core version: ``1.13.27`` → ``0.29.27``."""
    major, minor, patch = core_version.split(".")[:3]
    if major != "1":
        raise ValueError(f"unexpected Dagster core version {core_version!r}")
    return f"0.{int(minor) + _LIBRARY_MINOR_OFFSET}.{patch}"


def dagster_family_problems(versions: Mapping[str, str | None]) -> list[str]:
    """One sentence per package that does not belong with the installed ``dagster``; empty when consistent."""
    core = versions.get("dagster")
    if core is None:
        return ["dagster is not installed"]
    expected_library = library_version_for(core)
    problems = []
    for name, version in versions.items():
        expected = core if name in DAGSTER_CORE else expected_library
        if version is None:
            problems.append(f"{name} is not installed (dagster {core} needs {name} {expected})")
        elif version != expected:
            problems.append(f"{name} {version} does not belong with dagster {core} (expected {name} {expected})")
    return problems
