"""Checks before the agent server starts: the original server's settings, and the outside services.

Nothing is ignored silently. An original setting this platform does not carry stops start-up with a
message naming the replacement; a ``SAGE_*`` variable that is no setting is reported with the nearest
one; a preset file that cannot be read stops start-up. Outside services (MySQL for ``db_type mysql``,
the workspace's object storage) may be down at start, as they are while a compose stack comes up: the
server starts, says clearly what cannot be reached, and ``/health`` keeps saying so until it can.

Usage::

    for line in preflight(settings, os.environ):   # StartupError: do not start
        print(line, file=sys.stderr)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from sage_platform.config import Settings

# The original server's settings that have no counterpart here, with what to do instead.
UNSUPPORTED = {
    "MEMORY_ROOT_PATH": "user memory lives in the platform database here: use --memory_type user "
    "(SAGE_MEMORY_TYPE=user) and unset MEMORY_ROOT_PATH",
}
# SAGE_* variables the platform reads that are not settings (process plumbing and tests).
NOT_SETTINGS = {"SAGE_DAGSTER_COMPUTE_LOG_DIR", "SAGE_DAGSTER_PG_URL", "SAGE_PG_BIN_DIR", "SAGE_CRASH_AT"}


class StartupError(RuntimeError):
    pass


def setting_variables() -> set[str]:
    """Every environment name a setting is read from."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names |= {str(a) for a in getattr(alias, "choices", ())} or {f"SAGE_{name.upper()}"}
    return names


def check_environment(environ: Mapping[str, str]) -> list[str]:
    """Warnings for unknown ``SAGE_*`` names; ``StartupError`` for an unsupported original one."""
    for name, instead in UNSUPPORTED.items():
        if environ.get(name):
            raise StartupError(f"{name} is set, but this server does not use it: {instead}")
    known = setting_variables() | NOT_SETTINGS
    warnings = []
    for name in sorted(environ):
        if name.startswith("SAGE_") and name not in known and not name.startswith("SAGE_TEST_"):
            near = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            hint = f" (did you mean {near[0]}?)" if near else ""
            warnings.append(f"{name} is not a setting of this server and is ignored{hint}; docs/configuration.md")
    return warnings


def preflight(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Problems to show at start; raises ``StartupError`` for those that must stop it."""
    from sage_platform.agent.profiles import RunningConfig
    from sage_platform.agent.session_store import SessionStore
    from sage_platform.ops.storage import workspace_storage_problem

    warnings = check_environment(environ)
    if settings.preset_running_config_path is not None:
        try:
            RunningConfig.load(settings.preset_running_config_path)
        except ValueError as error:
            raise StartupError(str(error)) from error
    if settings.db_type == "mysql" and not settings.session_database_url:
        store = SessionStore.from_settings(settings)
        try:
            problem = store.reachable()
        finally:
            store.close()
        if problem:
            warnings.append(f"{problem}; the server starts, and session calls answer 503 until it can be reached")
    storage = workspace_storage_problem(settings)
    if storage:
        warnings.append(f"{storage}; the server starts, and /health reports it until it answers")
    return warnings
