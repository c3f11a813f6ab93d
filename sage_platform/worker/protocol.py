"""What the warm worker and its clients agree on: the socket, the fingerprints, the messages.

The socket lives in ``<tmp>/sage-<uid>/`` (mode 0700, ours, or nothing is used), one per data folder;
only the same user can reach it, and the worker also checks the peer's uid. A run goes to the worker
only when the client's effective settings and the platform's code are exactly those the worker
started with; otherwise the client runs it itself and says why.

Messages are JSON lines. The worker greets each connection it takes with ``{"hello": pid}``; it runs one
thing at a time, so a client that gets no greeting within seconds finds it busy, and closes without
having asked anything (nothing it asked can run later behind its back). Then the client sends
``{"ping": true}`` or ``{"run": {"job", "assets", "log_level"}, "settings": {name: digest}, "code":
stamp}``; the worker answers ``{"pong": pid}``, ``{"refused": reason}``, or ``{"accepted": pid}``, then
``{"log": line}``..., then ``{"done": success, "error": text | null}``.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any

from pydantic import SecretStr

import sage_platform
from sage_platform.config import Settings
from sage_platform.hashing import json_hash, text_hash

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_MESSAGE_BYTES = 64 * 1024


class UnsafeSocketFolder(RuntimeError):
    """The socket folder is not ours alone; nothing is sent through it."""


def socket_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"sage-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    found = folder.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
        raise UnsafeSocketFolder(f"{folder} must be a folder of user {os.getuid()} with mode 0700")
    return folder


def socket_path(settings: Settings) -> Path:
    """The worker's socket for this data folder (short: a unix socket path has at most 107 bytes)."""
    return socket_folder() / f"{text_hash(str(settings.data_dir.resolve()))[:16]}.sock"


def settings_digests(settings: Settings) -> dict[str, str]:
    """A digest per setting (secrets included, by value; relative paths resolved here)."""
    digests: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = str(value.resolve())
        digests[name] = json_hash(value if isinstance(value, (str, int, float, bool, type(None))) else str(value))
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home).resolve()  # as runtime picks it
    digests["DAGSTER_HOME"] = text_hash(str(dagster_home))
    return digests


def code_stamp() -> str:
    """Names, sizes and modification times of the platform's code and packaged files."""
    root = Path(sage_platform.__file__).parent
    entries = []
    for folder, subfolders, files in os.walk(root, followlinks=True):  # assets/, jobs/, sensors/ are links
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        for name in files:
            found = os.stat(os.path.join(folder, name))
            entries.append((os.path.relpath(os.path.join(folder, name), root), found.st_size, found.st_mtime_ns))
    return json_hash(sorted(entries))


def send(connection: socket.socket, message: dict[str, Any]) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


def receive(reader: Any) -> dict[str, Any] | None:
    """The next message from a ``makefile("rb")`` reader; None at the end of the stream."""
    line = reader.readline(MAX_MESSAGE_BYTES + 1)
    if not line:
        return None
    if len(line) > MAX_MESSAGE_BYTES or not line.endswith(b"\n"):
        raise ValueError(f"a message longer than {MAX_MESSAGE_BYTES} bytes or cut off")
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message
