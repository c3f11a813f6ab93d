"""The search layer: per-chunk text-search configuration, versioned indexes, Elasticsearch rows.

The single ``chunk_index`` table of 0001 becomes versioned tables ``chunk_index_v<N>`` behind a
``chunk_index`` view; the next ``pgvector_index`` run builds version 1 (vectors are reused).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"

UPGRADE = """
ALTER TABLE chunks ADD COLUMN ts_config text NOT NULL DEFAULT 'english';
ALTER TABLE chunks ADD COLUMN search_text text;
UPDATE documents SET chunker = NULL;

DROP TABLE IF EXISTS chunk_index;
DROP TABLE IF EXISTS chunk_index_build;
DROP TABLE IF EXISTS index_state;

CREATE TABLE index_versions (
    version       serial PRIMARY KEY,
    backend       text NOT NULL CHECK (backend IN ('pgvector', 'elasticsearch')),
    name          text NOT NULL UNIQUE,
    model         text NOT NULL,
    dim           integer NOT NULL,
    status        text NOT NULL CHECK (status IN ('building', 'live', 'previous', 'failed', 'dropped')),
    rows          bigint,
    checks        jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    activated_at  timestamptz,
    synced_at     timestamptz
);
CREATE UNIQUE INDEX index_versions_one_live ON index_versions (backend) WHERE status = 'live';

-- What the live Elasticsearch index holds, so a sync sends only the difference.
CREATE TABLE es_index_rows (
    index_name  text NOT NULL,
    chunk_id    text NOT NULL,
    doc_hash    text NOT NULL,
    PRIMARY KEY (index_name, chunk_id)
);
"""

DOWNGRADE = """
DROP VIEW IF EXISTS chunk_index;
DROP TABLE IF EXISTS es_index_rows, index_versions;
ALTER TABLE chunks DROP COLUMN IF EXISTS search_text, DROP COLUMN IF EXISTS ts_config;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
