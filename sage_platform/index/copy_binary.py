"""PostgreSQL ``COPY ... (FORMAT BINARY)`` payloads for (key, vector) rows, built with numpy.

Every row has the same layout (a 64-character hex key and a ``dim``-float vector), so the whole
payload is one structured array: no per-row Python work, which is where text COPY loses 25x.

Usage::

    with cursor.copy("COPY staging (text_hash, embedding) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(vector_rows_payload(hashes, vectors))
"""

from __future__ import annotations

import struct

import numpy as np

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)


def vector_rows_payload(keys: list[str], vectors: np.ndarray) -> bytes:
    """Binary COPY data for rows ``(text key, vector)``; all keys must have one length."""
    count, dim = vectors.shape
    if count != len(keys):
        raise ValueError(f"{len(keys)} keys for {count} vectors")
    if count == 0:
        return _HEADER + _TRAILER
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
    return _HEADER + rows.tobytes() + _TRAILER
