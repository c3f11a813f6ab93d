"""Reading a corpus or inbox file safely: regular files only, never through a link, never past a limit.

A symbolic link could point outside the corpus (a secret, ``/dev/zero``), a FIFO blocks the reader
forever, a device never ends. So a file is checked with ``lstat``, opened with ``O_NOFOLLOW`` and
``O_NONBLOCK``, checked again on the open descriptor (it may have been swapped in between), and read
up to the size limit and no further. Anything else is refused with a reason for ``rejected_documents``.

Usage::

    data = read_regular_file(Path("corpus/guide.md"), max_bytes=20_000_000)   # or raises Rejected
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sage_platform.ingest.readers import Rejected

_KINDS = (
    (stat.S_ISLNK, "a symbolic link (links are not followed: copy the file itself into the folder)"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_READ_CHUNK = 1 << 20


def not_regular(mode: int) -> str | None:
    """Why a file of this mode is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"not a regular file: {kind}"


def oversized(size: int, max_bytes: int) -> str:
    return f"oversized: {size:,} bytes is over SAGE_MAX_DOCUMENT_BYTES ({max_bytes:,})"


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes; ``Rejected`` for a link, a FIFO, a device, a socket, an oversized or unreadable file."""
    try:
        reason = not_regular(os.lstat(path).st_mode)
        if reason:
            raise Rejected(reason)
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise Rejected(f"unreadable: {error.strerror or error}") from None
    try:
        opened = os.fstat(descriptor)
        reason = not_regular(opened.st_mode)
        if reason:  # swapped for something else between lstat and open
            raise Rejected(reason)
        if opened.st_size > max_bytes:
            raise Rejected(oversized(opened.st_size, max_bytes))
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(descriptor, min(_READ_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # it grew while being read
            raise Rejected(oversized(total, max_bytes))
        return b"".join(chunks)
    except OSError as error:
        raise Rejected(f"unreadable: {error.strerror or error}") from None
    finally:
        os.close(descriptor)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 (never through a link there), and fsync it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
