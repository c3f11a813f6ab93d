"""Database errors people can act on, named once for every front door (CLI, agent tools).

Usage::

    if is_missing_table(error):
        print(NO_INDEX)
"""

from __future__ import annotations

NO_INDEX = "the database has no index yet: run `sage materialize` (or `sage up`) first"


def is_missing_table(error: BaseException) -> bool:
    """A table the index builds does not exist yet (psycopg's UndefinedTable, also inside SQLAlchemy's wrap)."""
    cause = getattr(error, "orig", None) or error
    return type(cause).__name__ == "UndefinedTable"
