"""Binary COPY payloads, loaded by the real PostgreSQL: every key and every float arrives as sent."""

from __future__ import annotations

import hashlib

import numpy as np
import psycopg
import pytest

from sage_platform.db.copy_binary import vector_rows_pieces


def _keys(count: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(count)]


def _load(url: str, keys: list[str], vectors: np.ndarray, rows_per_piece: int) -> list[tuple[str, np.ndarray]]:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TEMP TABLE staging (text_hash text, embedding vector)")
        with conn.cursor().copy("COPY staging (text_hash, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            for piece in vector_rows_pieces(keys, vectors, rows_per_piece):
                copy.write(piece)
        rows = conn.execute("SELECT text_hash, embedding::real[] FROM staging ORDER BY text_hash").fetchall()
    return [(key, np.asarray(values, dtype=np.float32)) for key, values in rows]


@pytest.mark.parametrize(("count", "dim", "rows_per_piece"), [(0, 4, 512), (1, 3, 512), (1000, 384, 512), (7, 5, 3)])
def test_every_row_loads_bit_for_bit(database_url: str, count: int, dim: int, rows_per_piece: int) -> None:
    rng = np.random.default_rng(count)
    vectors = rng.normal(size=(count, dim)).astype(np.float32)
    if count >= 3:  # extremes of float32: the tiniest normal, the most negative, and pi
        vectors[:3, 0] = [1.1754944e-38, -3.4028235e38, np.pi]
    keys = _keys(count)
    loaded = _load(database_url, keys, vectors, rows_per_piece)
    expected = sorted(zip(keys, vectors, strict=True), key=lambda row: row[0])
    assert [key for key, _ in loaded] == [key for key, _ in expected]
    for (_, got), (_, sent) in zip(loaded, expected, strict=True):
        assert got.tobytes() == sent.tobytes()  # the same float32 bits, not just close


def test_pieces_are_a_header_then_row_groups_then_the_trailer() -> None:
    vectors = np.ones((5, 2), dtype=np.float32)
    pieces = list(vector_rows_pieces(_keys(5), vectors, rows_per_piece=2))
    assert pieces[0].startswith(b"PGCOPY\n\xff\r\n\x00") and pieces[-1] == b"\xff\xff"
    row_bytes = 2 + 4 + 64 + 4 + 2 + 2 + 4 * 2
    assert [len(p) for p in pieces[1:-1]] == [2 * row_bytes, 2 * row_bytes, row_bytes]


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="3 keys for 2 vectors"):
        list(vector_rows_pieces(_keys(3), np.zeros((2, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match="same length"):
        list(vector_rows_pieces(["a" * 64, "b" * 63], np.zeros((2, 4), dtype=np.float32)))
