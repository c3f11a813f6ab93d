"""The RAG spine: documents, rejects, chunks, content-addressed embeddings, evaluation.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None

UPGRADE = """
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE source_files (
    path        text PRIMARY KEY,
    file_hash   text NOT NULL,
    size_bytes  bigint NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    doc_id        text PRIMARY KEY,
    source        text NOT NULL REFERENCES source_files (path) ON DELETE CASCADE,
    title         text,
    text          text NOT NULL,
    content_hash  text NOT NULL,
    metadata      jsonb NOT NULL DEFAULT '{}',
    size_bytes    bigint NOT NULL,
    chunked_hash  text,
    chunker       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_source_idx ON documents (source);

CREATE TABLE rejected_documents (
    path          text NOT NULL,  -- the file, or the record inside it ("a.jsonl:3")
    source        text NOT NULL,  -- the file
    content_hash  text NOT NULL,
    reason        text NOT NULL,
    size_bytes    bigint,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (path, content_hash)
);
CREATE INDEX rejected_documents_source_idx ON rejected_documents (source);

CREATE TABLE chunks (
    chunk_id     text PRIMARY KEY,
    doc_id       text NOT NULL REFERENCES documents (doc_id) ON DELETE CASCADE,
    position     integer NOT NULL,
    text         text NOT NULL,
    text_hash    text NOT NULL,
    token_count  integer NOT NULL,
    doc_hash     text NOT NULL,
    UNIQUE (doc_id, position)
);
CREATE INDEX chunks_text_hash_idx ON chunks (text_hash);

-- Content-addressed: one vector per (model, text), shared by every chunk with that text.
CREATE TABLE embeddings (
    model       text NOT NULL,
    text_hash   text NOT NULL,
    dim         integer NOT NULL,
    embedding   vector NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, text_hash)
);

CREATE TABLE index_state (
    name       text PRIMARY KEY,
    model      text NOT NULL,
    dim        integer NOT NULL,
    rows       bigint NOT NULL,
    built_at   timestamptz NOT NULL DEFAULT now(),
    synced_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE eval_questions (
    question_id       text PRIMARY KEY,
    position          integer NOT NULL,
    question          text NOT NULL,
    golden_answers    jsonb NOT NULL,
    relevant_doc_ids  jsonb NOT NULL,
    label             text,
    metadata          jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE rag_answers (
    question_id        text PRIMARY KEY REFERENCES eval_questions (question_id) ON DELETE CASCADE,
    answer             text NOT NULL,
    answerer           text NOT NULL,
    retrieved_chunk_ids jsonb NOT NULL,
    retrieved_doc_ids  jsonb NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE eval_runs (
    run_id      text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    settings    jsonb NOT NULL,
    scores      jsonb NOT NULL
);

CREATE TABLE eval_items (
    run_id       text NOT NULL REFERENCES eval_runs (run_id) ON DELETE CASCADE,
    question_id  text NOT NULL,
    prediction   text NOT NULL,
    scores       jsonb NOT NULL,
    PRIMARY KEY (run_id, question_id)
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS eval_items, eval_runs, rag_answers, eval_questions, index_state, embeddings,
    chunks, rejected_documents, documents, source_files CASCADE;
DROP TABLE IF EXISTS chunk_index CASCADE;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
