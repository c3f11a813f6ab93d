"""Queries go to PostgreSQL's ``websearch_to_tsquery`` in a form it always parses.

Its parser stacks one NOT per minus sign and raises "tsquery stack too small" at 32: the first words
of a chunk of the PostgreSQL manual (a psql table rule) raised it in the retrieval benchmark.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import psycopg
import pytest

from sage_platform.text_search import websearch_query

RULE = "----------+---------+------------ zebrafish"
# Units that, repeated, pile minus signs up before any word (found by fuzzing the parser).
PILING_UNITS = ["-", "- ", "-(", "-)", "-- ", "- | ", "-<", "-!", "-&", "-\t("]


@pytest.fixture(scope="module")
def conn(pg_server: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_server, autocommit=True) as connection:
        yield connection


def parsed(conn: psycopg.Connection, text: str) -> str:
    row = conn.execute("SELECT websearch_to_tsquery('english', %s)::text", (text,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize("unit", PILING_UNITS)
def test_runs_of_minus_signs_that_break_the_parser_parse_once_cleaned(conn: psycopg.Connection, unit: str) -> None:
    text = unit * 40 + " zebrafish"
    with pytest.raises(psycopg.errors.InternalError, match="tsquery stack too small"):
        parsed(conn, text)
    assert parsed(conn, websearch_query(text)) == "'zebrafish'"


def test_a_table_rule_keeps_the_words_after_it(conn: psycopg.Connection) -> None:
    assert parsed(conn, websearch_query(RULE)) == "'zebrafish'"


def test_a_run_of_minus_signs_is_punctuation_and_a_single_one_negates(conn: psycopg.Connection) -> None:
    assert parsed(conn, websearch_query("---zebrafish")) == "'zebrafish'"
    assert parsed(conn, websearch_query("- - - zebrafish")) == "'zebrafish'"
    assert parsed(conn, websearch_query("larvae -zebrafish")) == "'larva' & !'zebrafish'"


@pytest.mark.parametrize(
    "query",
    ["fish -zebra", "fish - zebra", '-"zebra fish" larvae', "x-ray follow-up", "a--b", "e-mail -spam OR ham", ""],
)
def test_ordinary_queries_are_unchanged(query: str) -> None:
    assert websearch_query(query) == query


def test_no_generated_query_breaks_the_parser_once_cleaned(conn: psycopg.Connection) -> None:
    """Seeded random repetitions of short units over the parser's special characters."""
    alphabet = ["-", " ", "(", ")", '"', "a", "the", "or", ".", "+", "!", "&", "|", ":", "*", "<", ">", "'", "\\"]
    alphabet += ["x-", "-y", "é", "北京", "\t", ",", "_", "OR", "x", "@", "#", "1", "—", "/", "~", "^", "\u00a0"]
    rng = random.Random(20261130)
    breaking = 0
    for _ in range(1500):
        unit = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
        text = unit * rng.randint(20, 80)
        try:
            parsed(conn, text)
        except psycopg.errors.InternalError:
            breaking += 1
        parsed(conn, websearch_query(text))  # raises on a miss
    assert breaking >= 10  # the generator does reach the parser's limit
