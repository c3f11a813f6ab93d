"""``Database.migrate``: Alembic runs only when the database is behind the newest migration."""

from __future__ import annotations

import psycopg
from alembic import command
from sqlalchemy import create_engine

from sage_platform.db import Database
from sage_platform.db.migrate import alembic_config, at_head
from sage_platform.db.urls import sqlalchemy_url


def test_a_database_behind_the_newest_migration_is_brought_up_and_one_at_it_left_alone(database_url: str) -> None:
    database = Database(database_url)
    assert not at_head(database_url)  # a new database: no version table yet
    database.migrate()
    assert at_head(database_url)

    engine = create_engine(sqlalchemy_url(database_url))
    config = alembic_config()
    with engine.begin() as connection:  # one step back, as a restored older backup would be
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
    engine.dispose()
    assert not at_head(database_url)
    database.migrate()
    assert at_head(database_url)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('change_notes')").fetchone() != (None,)  # the newest table
    database.close()
