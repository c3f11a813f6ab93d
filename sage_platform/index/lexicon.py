"""Document frequencies of the live index's lexemes, for BM25 ranking of full-text matches.

Each index version ``chunk_index_v<N>`` has a lexicon table ``chunk_index_v<N>_lexicon`` (lexeme,
number of rows holding it); the view ``chunk_lexicon`` points at the live one and is repointed in the
same transaction as ``chunk_index``. A rebuild counts every lexeme once (``ts_stat``); an incremental
sync applies only what its deleted and inserted rows add or take away, so the counts stay exact. The
version's row count and total length (lexemes per row, summed) sit in ``index_versions.checks``, from
which a reader gets BM25's average row length.

Usage::

    build_lexicon(conn, "chunk_index_v7")          # after the table is loaded
    point_lexicon_view(conn, "chunk_index_v7")     # inside the transaction that switches readers
"""

from __future__ import annotations

import psycopg
from psycopg import sql

LEXICON_VIEW = "chunk_lexicon"
CHANGES_TABLE = "chunk_index_changes"  # per-transaction: the tsvectors a sync removed (-1) and added (+1)


def lexicon_table(index_table: str) -> str:
    return f"{index_table}_lexicon"


def build_lexicon(conn: psycopg.Connection, index_table: str) -> None:
    """Create and fill the lexicon of ``index_table``, and record its total length."""
    lexicon = sql.Identifier(lexicon_table(index_table))
    table = sql.Identifier(index_table)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(lexicon))
    conn.execute(sql.SQL("CREATE TABLE {} (word text PRIMARY KEY, ndoc bigint NOT NULL)").format(lexicon))
    conn.execute(
        sql.SQL("INSERT INTO {} SELECT word, ndoc FROM ts_stat(%s)").format(lexicon),
        (sql.SQL("SELECT tsv FROM {}").format(table).as_string(conn),),
    )
    conn.execute(
        sql.SQL(
            """UPDATE index_versions SET checks = checks || jsonb_build_object('text_length',
                   (SELECT coalesce(sum(length(tsv)), 0) FROM {}))
               WHERE name = %s"""
        ).format(table),
        (index_table,),
    )


def start_changes(conn: psycopg.Connection) -> None:
    """A scratch table, dropped at commit, into which a sync writes the tsvectors it removes and adds."""
    conn.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (sign integer, tsv tsvector) ON COMMIT DROP").format(
            sql.Identifier(CHANGES_TABLE)
        )
    )


def apply_changes(conn: psycopg.Connection, index_table: str) -> None:
    """Add the inserted rows' lexemes to the counts, take the deleted rows' away (same transaction)."""
    lexicon = sql.Identifier(lexicon_table(index_table))
    changes = sql.Identifier(CHANGES_TABLE)
    conn.execute(
        sql.SQL(
            """INSERT INTO {lexicon} AS l (word, ndoc)
               SELECT u.lexeme, sum(c.sign) FROM {changes} c, unnest(c.tsv) u GROUP BY u.lexeme
               ON CONFLICT (word) DO UPDATE SET ndoc = l.ndoc + excluded.ndoc"""
        ).format(lexicon=lexicon, changes=changes)
    )
    conn.execute(sql.SQL("DELETE FROM {} WHERE ndoc <= 0").format(lexicon))
    conn.execute(
        sql.SQL(
            """UPDATE index_versions SET checks = checks || jsonb_build_object('text_length',
                   coalesce((checks->>'text_length')::bigint, 0)
                   + (SELECT coalesce(sum(sign * length(tsv)), 0) FROM {}))
               WHERE name = %s"""
        ).format(changes),
        (index_table,),
    )


def point_lexicon_view(conn: psycopg.Connection, index_table: str) -> None:
    """Point ``chunk_lexicon`` at the table's lexicon, building it first for a version made before lexicons."""
    exists = conn.execute("SELECT to_regclass(%s)", (lexicon_table(index_table),)).fetchone()
    if not exists or exists[0] is None:
        build_lexicon(conn, index_table)
    view = sql.Identifier(LEXICON_VIEW)
    conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
    conn.execute(sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(view, sql.Identifier(lexicon_table(index_table))))


def drop_lexicon(conn: psycopg.Connection, index_table: str) -> None:
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(lexicon_table(index_table))))
