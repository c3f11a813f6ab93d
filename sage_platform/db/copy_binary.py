"""PostgreSQL ``COPY ... (FORMAT BINARY)`` payloads for (key, vector) rows, built with numpy.

Every row has the same layout (a 64-character hex key and a ``dim``-float vector), so the whole
payload is one structured array: no per-row Python work, which is where text COPY loses 25x.

Usage::

    with cursor.copy("COPY staging (text_hash, embedding) FROM STDIN (FORMAT BINARY)") as copy:
        for piece in vector_rows_pieces(hashes, vectors):
            copy.write(piece)
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)


ROWS_PER_PIECE = 512  # measured: 512-row pieces beat one buffer by ~1.7x and 2048-row pieces by ~1.2x


def vector_rows_pieces(keys: list[str], vectors: np.ndarray, rows_per_piece: int = ROWS_PER_PIECE) -> Iterator[bytes]:
    """The payload in pieces, so the server parses one piece while the next is built."""
    count = vectors.shape[0]
    if count != len(keys):
        raise ValueError(f"{len(keys)} keys for {count} vectors")
    yield _HEADER
    for start in range(0, count, rows_per_piece):
        yield _rows(keys[start : start + rows_per_piece], vectors[start : start + rows_per_piece])
    yield _TRAILER


def _rows(keys: list[str], vectors: np.ndarray) -> bytes:
    count, dim = vectors.shape
    if count == 0:
        return b""
    key_len = len(keys[0])
    encoded = np.array([key.encode("ascii") for key in keys], dtype=f"S{key_len}")
    if encoded.dtype.itemsize != key_len or any(len(key) != key_len for key in keys):
        raise ValueError("all keys must have the same length")
    row = np.dtype(
        [("fields", ">i2"), ("key_len", ">i4"), ("key", f"S{key_len}"), ("vec_len", ">i4"),
         ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (dim,))]
    )  # fmt: skip
    rows = np.empty(count, dtype=row)
    rows["fields"] = 2
    rows["key_len"] = key_len
    rows["key"] = encoded
    rows["vec_len"] = 4 + 4 * dim
    rows["dim"] = dim
    rows["unused"] = 0
    rows["vec"] = vectors
    return rows.tobytes()
