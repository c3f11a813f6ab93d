"""Lexeme document frequencies for BM25: the live pgvector index version gets its lexicon.

Versions built from now on get ``chunk_index_v<N>_lexicon`` when they are built; this one fills it for
the version that is live at upgrade time and points the ``chunk_lexicon`` view at it. A previous
version gets its lexicon if it is ever rolled back to.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"

UPGRADE = """
DO $$
DECLARE live text;
BEGIN
    SELECT name INTO live FROM index_versions WHERE backend = 'pgvector' AND status = 'live';
    IF live IS NOT NULL AND to_regclass(live) IS NOT NULL THEN
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I (word text PRIMARY KEY, ndoc bigint NOT NULL)', live || '_lexicon');
        EXECUTE format('INSERT INTO %I SELECT word, ndoc FROM ts_stat(%L) ON CONFLICT DO NOTHING',
                       live || '_lexicon', format('SELECT tsv FROM %I', live));
        EXECUTE format('UPDATE index_versions SET checks = checks || jsonb_build_object(''text_length'',
                       (SELECT coalesce(sum(length(tsv)), 0) FROM %I)) WHERE name = %L', live, live);
        EXECUTE format('CREATE OR REPLACE VIEW chunk_lexicon AS SELECT * FROM %I', live || '_lexicon');
    END IF;
END $$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS chunk_lexicon")
