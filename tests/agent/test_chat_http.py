"""The model's event stream is split into lines whatever the boundaries of the reads it arrives in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sage_platform.agent.chat_http import split_lines

STREAM = b'data: {"a": 1}\r\n\r\ndata: {"b": "x\\ny"}\n\ndata: [DONE]\n\n{"whole": "answer, unended"}'
LINES = [b'data: {"a": 1}', b"", b'data: {"b": "x\\ny"}', b"", b"data: [DONE]", b"", b'{"whole": "answer, unended"}']


async def _lines_of(chunks: list[bytes]) -> list[bytes]:
    async def reads() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [line async for line in split_lines(reads())]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, len(STREAM)])
def test_lines_do_not_depend_on_where_reads_end(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert asyncio.run(_lines_of(chunks)) == LINES


def test_a_carriage_return_split_from_its_newline_is_not_kept() -> None:
    assert asyncio.run(_lines_of([b"data: 1\r", b"\ndata: 2\r", b"\n"])) == [b"data: 1", b"data: 2"]
