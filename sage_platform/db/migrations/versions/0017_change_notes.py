"""Change notes: triggers note each written document, chunk and vector for the readers that work on
what changed since their last read (the data-quality suites, the index sync) in ``change_notes``;
``change_readers`` keeps the basis each reader last read under (a suite's rules, the index version),
and a reader whose basis changed reads the whole table again.

Statement-level triggers with transition tables: one insert per statement, whatever its size (a COPY of
thousands of chunks included), and whatever wrote the rows (the pipeline, an operator's UPDATE).

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"

# table: (its primary key, [(reader, the noted key, the columns an UPDATE must change to be noted,
# whether a DELETE is noted)]). Chunking rewrites every chunked document's bookkeeping, which no reader
# reads, so an UPDATE is noted only where a column its reader reads changed.
_NOTED: dict[str, tuple[str, list[tuple[str, str, tuple[str, ...], bool]]]] = {
    "documents": ("doc_id", [("raw_documents", "doc_id", ("text", "size_bytes", "source"), False)]),
    "chunks": (
        "chunk_id",
        [
            ("document_chunks", "chunk_id", ("text", "token_count", "doc_id"), False),
            ("chunk_embeddings", "text_hash", ("text_hash",), False),
            ("pgvector_index", "chunk_id", ("doc_id", "doc_hash"), True),
            ("pgvector_index_quality", "chunk_id", ("doc_id", "doc_hash"), True),
        ],
    ),
    # A vector written or removed: the chunks with that text are validated again.
    "embeddings": ("model, text_hash", [("chunk_embeddings", "text_hash", ("model", "embedding", "dim"), True)]),
}
_TRANSITIONS = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}


def _events(table: str) -> list[str]:
    deletes = any(noted for *_, noted in _NOTED[table][1])
    return ["INSERT", "UPDATE", "DELETE"] if deletes else ["INSERT", "UPDATE"]


def _note_function(table: str, event: str) -> str:
    primary_key, readers = _NOTED[table]
    if event == "UPDATE":
        selects = [
            f"SELECT DISTINCT '{reader}', n.{key} FROM new_rows n LEFT JOIN old_rows o USING ({primary_key})"  # noqa: S608
            f" WHERE o.{key} IS NULL OR ROW({', '.join(f'o.{c}' for c in columns)})"
            f" IS DISTINCT FROM ROW({', '.join(f'n.{c}' for c in columns)})"
            for reader, key, columns, _ in readers
        ]
    else:
        rows = "old_rows" if event == "DELETE" else "new_rows"
        selects = [
            f"SELECT DISTINCT '{reader}', {key} FROM {rows}"  # noqa: S608
            for reader, key, _, noted_on_delete in readers
            if event == "INSERT" or noted_on_delete
        ]
    return f"""CREATE FUNCTION change_notes_{event.lower()}_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                   INSERT INTO change_notes (reader, key) {" UNION ALL ".join(selects)};
                   RETURN NULL;
               END $$"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE change_notes (
            reader text NOT NULL,  -- the checks' suites (raw_documents, ...), pgvector_index (the sync)
            key    text NOT NULL   -- the row's id (a chunk's text hash for chunk_embeddings)
        );
        CREATE INDEX change_notes_reader_idx ON change_notes (reader);
        CREATE TABLE change_readers (
            reader  text PRIMARY KEY,
            basis   text NOT NULL,  -- what it last read under: a suite's rules, the index version
            read_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )
    for table in _NOTED:
        for event in _events(table):
            op.execute(_note_function(table, event))
            op.execute(
                f"""CREATE TRIGGER {table}_{event.lower()}_change_notes AFTER {event} ON {table}
                    REFERENCING {_TRANSITIONS[event]}
                    FOR EACH STATEMENT EXECUTE FUNCTION change_notes_{event.lower()}_{table}()"""
            )


def downgrade() -> None:
    for table in _NOTED:
        for event in _events(table):
            op.execute(f"DROP TRIGGER {table}_{event.lower()}_change_notes ON {table}")
            op.execute(f"DROP FUNCTION change_notes_{event.lower()}_{table}()")
    op.execute("DROP TABLE change_notes; DROP TABLE change_readers;")
