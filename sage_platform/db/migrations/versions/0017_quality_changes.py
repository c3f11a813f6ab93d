"""The data-quality suites validate what was written since their last pass: triggers note each written
document, chunk and vector in ``quality_pending``; ``quality_validations`` keeps the rules each suite last
passed under (a change of rules validates the whole table again).

Statement-level triggers with transition tables: one insert per statement, whatever its size (a COPY of
thousands of chunks included), and whatever wrote the rows (the pipeline, an operator's UPDATE).

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"

# What each table's writes note: (suite, the noted key, the columns that suite reads); an UPDATE is noted
# only where one of those columns changed (chunking rewrites every chunked document's bookkeeping).
_WATCHED: dict[str, tuple[str, list[tuple[str, str, tuple[str, ...]]]]] = {
    "documents": ("doc_id", [("raw_documents", "doc_id", ("text", "size_bytes", "source"))]),
    "chunks": (
        "chunk_id",
        [
            ("document_chunks", "chunk_id", ("text", "token_count", "doc_id")),
            ("chunk_embeddings", "text_hash", ("text_hash",)),
        ],
    ),
    "embeddings": ("model, text_hash", [("chunk_embeddings", "text_hash", ("model", "embedding", "dim"))]),
}


def _note_function(table: str, event: str) -> str:
    primary_key, notes = _WATCHED[table]
    if event == "UPDATE":
        selects = [
            f"SELECT DISTINCT '{suite}', n.{key} FROM new_rows n LEFT JOIN old_rows o USING ({primary_key})"  # noqa: S608
            f" WHERE o.{key} IS NULL OR ROW({', '.join(f'o.{c}' for c in columns)})"
            f" IS DISTINCT FROM ROW({', '.join(f'n.{c}' for c in columns)})"
            for suite, key, columns in notes
        ]
    else:
        rows = "old_rows" if event == "DELETE" else "new_rows"
        selects = [f"SELECT DISTINCT '{suite}', {key} FROM {rows}" for suite, key, _ in notes]  # noqa: S608
    return f"""CREATE FUNCTION quality_note_{event.lower()}_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                   INSERT INTO quality_pending (suite, key) {" UNION ALL ".join(selects)};
                   RETURN NULL;
               END $$"""


def _events(table: str) -> tuple[str, ...]:
    # A removed vector leaves its chunks without one; a removed document or chunk leaves nothing to check.
    return ("INSERT", "UPDATE", "DELETE") if table == "embeddings" else ("INSERT", "UPDATE")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE quality_pending (
            suite text NOT NULL,  -- the asset check's suite: raw_documents, document_chunks, chunk_embeddings
            key   text NOT NULL   -- the row's id (a chunk's text hash for chunk_embeddings)
        );
        CREATE INDEX quality_pending_suite_idx ON quality_pending (suite);
        CREATE TABLE quality_validations (
            suite        text PRIMARY KEY,
            rules        text NOT NULL,  -- a fingerprint of the suite's query and expectations
            validated_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )
    for table in _WATCHED:
        for event in _events(table):
            transition = {
                "INSERT": "NEW TABLE AS new_rows",
                "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                "DELETE": "OLD TABLE AS old_rows",
            }[event]
            op.execute(_note_function(table, event))
            op.execute(
                f"""CREATE TRIGGER {table}_{event.lower()}_quality AFTER {event} ON {table}
                    REFERENCING {transition}
                    FOR EACH STATEMENT EXECUTE FUNCTION quality_note_{event.lower()}_{table}()"""
            )


def downgrade() -> None:
    for table in _WATCHED:
        for event in _events(table):
            op.execute(f"DROP TRIGGER {table}_{event.lower()}_quality ON {table}")
            op.execute(f"DROP FUNCTION quality_note_{event.lower()}_{table}()")
    op.execute("DROP TABLE quality_pending; DROP TABLE quality_validations;")
