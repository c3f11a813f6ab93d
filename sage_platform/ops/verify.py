"""What verifies a backup: a manifest of every table (row count and a whole-row checksum), taken in a
snapshot, and its comparison with the same manifest of a restored copy.

Usage::

    expected = [t.__dict__ for t in manifest(source_conn)]      # inside the dump's snapshot
    checks = compare(expected, manifest(restored_conn))        # [{"table", "rows", "match", ...}]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["TableCheck", "compare", "manifest"]


@dataclass
class TableCheck:
    table: str
    rows: int
    checksum: str  # md5 over the sorted md5s of each row's text: any changed value changes it


def manifest(conn: psycopg.Connection) -> list[TableCheck]:
    """Row count and whole-row checksum of every table in ``public``, in the connection's snapshot.

    A row's text is its every column (vectors, text, JSON) as PostgreSQL prints it, with the output
    settings fixed here so that the same data always prints the same; the checksum sorts the rows'
    hashes, so it needs no key and ignores the physical order a restore writes rows in.
    """
    for setting, value in (("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"), ("extra_float_digits", "1"),
                           ("IntervalStyle", "postgres"), ("bytea_output", "hex")):  # fmt: skip
        conn.execute("SELECT set_config(%s, %s, false)", (setting, value))
    tables = conn.execute(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
           ORDER BY c.relname"""
    ).fetchall()
    query = sql.SQL(
        "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') FROM (SELECT md5(t::text) AS h FROM {} t) r"
    )
    out = []
    for (table,) in tables:
        count, checksum = conn.execute(query.format(sql.Identifier(table))).fetchone()  # type: ignore[misc]
        out.append(TableCheck(table, int(count), checksum))
    return out


def compare(expected: list[dict[str, Any]], actual: list[TableCheck]) -> list[dict[str, Any]]:
    """Each expected table against what was restored: same row count and same whole-row checksum.

    A manifest written before whole-row checksums has none: its tables are compared by row count.
    """
    found = {t.table: t for t in actual}
    out = []
    for table in expected:
        got = found.get(table["table"])
        match = got is not None and got.rows == table["rows"]
        if "checksum" in table:
            match = match and got is not None and got.checksum == table["checksum"]
        out.append({"table": table["table"], "rows": table["rows"], "restored_rows": got.rows if got else None,
                    "checksum": table.get("checksum"), "match": match})  # fmt: skip
    return out
