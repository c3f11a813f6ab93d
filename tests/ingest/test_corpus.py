import json
from pathlib import Path

import pytest

from sage_platform.db import Database
from sage_platform.ingest import ingest_corpus
from sage_platform.ingest.corpus import NOT_READ, MassDeletion, iter_corpus_files
from sage_platform.ingest.isolation import ParserLimits
from sage_platform.ingest.readers import ReaderLimits


def _ingest(db: Database, corpus: Path, max_bytes: int = 10_000):  # type: ignore[no-untyped-def]
    return ingest_corpus(db, corpus, max_document_bytes=max_bytes)


def _documents(db: Database) -> dict[str, str]:
    with db.connect() as conn:
        return dict(conn.execute("SELECT doc_id, text FROM documents").fetchall())


def _rejects(db: Database) -> dict[str, str]:
    with db.connect() as conn:
        return dict(conn.execute("SELECT path, reason FROM rejected_documents").fetchall())


def test_incremental_ingestion_skips_replaces_and_deletes(db: Database, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.md").write_text("# A\n\nalpha")
    (corpus / "sub" / "b.txt").write_text("beta")
    (corpus / "records.jsonl").write_text(
        json.dumps({"id": "r1", "text": "one"}) + "\n" + json.dumps({"id": "r2", "text": "two"}) + "\n"
    )
    (corpus / "image.png").write_bytes(b"\x89PNG")
    (corpus / ".hidden.md").write_text("secret")
    first = _ingest(db, corpus)
    assert (first.added, first.files_ignored) == (4, 1)
    assert set(_documents(db)) == {"a.md", "sub/b.txt", "r1", "r2"}

    again = _ingest(db, corpus)
    assert (again.added, again.updated, again.deleted, again.files_unchanged) == (0, 0, 0, 3)

    (corpus / "a.md").write_text("# A\n\nalpha, edited")
    (corpus / "sub" / "b.txt").unlink()
    (corpus / "records.jsonl").write_text(json.dumps({"id": "r1", "text": "one"}) + "\n")
    third = _ingest(db, corpus)
    assert (third.added, third.updated, third.deleted, third.unchanged_documents) == (0, 1, 2, 1)
    assert _documents(db) == {"a.md": "# A\n\nalpha, edited", "r1": "one"}


def test_bad_files_are_rejected_and_the_rest_is_ingested(db: Database, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"

    (corpus / "good.md").write_text("good text")
    (corpus / "empty.txt").write_text("")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02data")
    (corpus / "big.txt").write_text("x" * 20_000)
    (corpus / "latin.txt").write_bytes("caf\u00e9".encode("latin-1"))
    (corpus / "gone.md").symlink_to(corpus / "missing-target.md")
    (corpus / "mixed.jsonl").write_text(json.dumps({"id": "ok", "text": "fine"}) + "\n{broken\n")
    stats = _ingest(db, corpus)
    assert set(_documents(db)) == {"good.md", "ok"}
    rejects = _rejects(db)
    assert rejects["empty.txt"] == "empty file"
    assert rejects["binary.txt"].startswith("binary content")
    assert rejects["big.txt"] == "oversized: 20,000 bytes is over SAGE_MAX_DOCUMENT_BYTES (10,000)"
    assert rejects["latin.txt"] == "undecodable: not valid UTF-8 at byte 3"
    assert rejects["gone.md"].startswith("not a regular file: a symbolic link")
    assert rejects["mixed.jsonl:2"].startswith("mixed.jsonl:2: invalid JSON")
    assert len(stats.rejected) == 6

    # A re-run records the same rejects once, not twice; fixing a file clears its reject.
    (corpus / "empty.txt").write_text("now it has text")
    _ingest(db, corpus)
    rejects = _rejects(db)
    assert "empty.txt" not in rejects and len(rejects) == 5
    assert "empty.txt" in _documents(db)


def test_a_file_that_turns_bad_keeps_its_last_good_version(db: Database, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"

    (corpus / "notes.md").write_text("important notes")
    _ingest(db, corpus)
    (corpus / "notes.md").write_bytes(b"")
    _ingest(db, corpus)
    assert _documents(db) == {"notes.md": "important notes"}
    assert _rejects(db) == {"notes.md": "empty file"}
    (corpus / "notes.md").unlink()
    ingest_corpus(db, corpus, max_document_bytes=10_000, max_delete_fraction=1.0)  # all of it: forced
    assert _documents(db) == {} and _rejects(db) == {}


def test_an_id_owned_by_another_file_is_rejected_not_overwritten(db: Database, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"

    (corpus / "a.jsonl").write_text(json.dumps({"id": "x", "text": "from a"}))
    _ingest(db, corpus)
    (corpus / "b.jsonl").write_text(json.dumps({"id": "x", "text": "from b"}))
    _ingest(db, corpus)
    assert _documents(db) == {"x": "from a"}
    assert _rejects(db) == {"b.jsonl#x": "duplicate id 'x': already ingested from a.jsonl"}


def test_a_missing_corpus_folder_is_an_error_not_a_mass_delete(db: Database, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"

    (corpus / "a.md").write_text("alpha")
    _ingest(db, corpus)
    try:
        _ingest(db, tmp_path / "nope")
    except FileNotFoundError as error:
        assert "SAGE_CORPUS_DIR" in str(error)
    else:
        raise AssertionError("expected FileNotFoundError")
    assert set(_documents(db)) == {"a.md"}


def test_a_run_deleting_over_half_the_documents_stops_before_changing_anything(db: Database, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for name in "abcd":
        (corpus / f"{name}.md").write_text(f"text {name}")
    _ingest(db, corpus)
    for name in "abc":
        (corpus / f"{name}.md").unlink()
    with pytest.raises(MassDeletion) as refused:
        _ingest(db, corpus)
    assert str(refused.value) == (
        f"refusing to delete 3 of 4 documents (75%): 3 files are gone from {corpus}. Is the folder empty or "
        "unmounted? If the deletion is meant, run once with SAGE_MAX_DELETE_FRACTION=1 (now 0.5)."
    )
    assert set(_documents(db)) == {"a.md", "b.md", "c.md", "d.md"}
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM source_files").fetchone() == (4,)
    (corpus / "c.md").write_text("text c")  # now exactly half is gone: allowed
    stats = _ingest(db, corpus)
    assert (stats.deleted, stats.files_unchanged) == (2, 2)
    assert set(_documents(db)) == {"c.md", "d.md"}


def test_progress_counts_and_sizes_follow_the_files(db: Database, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir()
    (corpus / ".git").mkdir()
    (corpus / ".git" / "config.md").write_text("hidden folder")
    (corpus / "b.md").write_text("bee")
    (corpus / "sub" / "a.txt").write_text("ay ay")
    (corpus / "linked.md").symlink_to(corpus / "sub")  # a link to a folder: listed, rejected, never walked
    (corpus / "notes.bin").write_bytes(b"\x00")
    (corpus / "big.txt").write_text("x" * 10_001)
    seen: list[tuple[int, str]] = []
    stats = ingest_corpus(db, corpus, max_document_bytes=10_000, progress=lambda n, rel: seen.append((n, rel)))
    assert seen == [(1, "b.md"), (2, "big.txt"), (3, "linked.md"), (4, "sub/a.txt")]
    assert (stats.files_seen, stats.files_ignored, stats.added, stats.bytes_read) == (4, 1, 2, 3 + 5)
    assert set(_documents(db)) == {"b.md", "sub/a.txt"}
    with db.connect() as conn:
        rows = conn.execute("SELECT path, content_hash, size_bytes FROM rejected_documents ORDER BY path").fetchall()
    assert rows == [("big.txt", NOT_READ, 10_001), ("linked.md", NOT_READ, None)]
    assert [c for c in iter_corpus_files(corpus)] == [
        ("b.md", corpus / "b.md"), ("big.txt", corpus / "big.txt"), ("linked.md", corpus / "linked.md"),
        ("notes.bin", corpus / "notes.bin"), ("sub/a.txt", corpus / "sub" / "a.txt"),
    ]  # fmt: skip


def test_a_file_that_turns_bad_another_way_keeps_one_reject_with_the_new_reason(db: Database, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "notes.txt").write_text("")
    (corpus / "other.md").write_text("other")
    _ingest(db, corpus)
    assert _rejects(db) == {"notes.txt": "empty file"}
    (corpus / "notes.txt").write_bytes(b"\x00\x01binary")
    _ingest(db, corpus)
    with db.connect() as conn:
        rows = conn.execute("SELECT path, reason, size_bytes FROM rejected_documents").fetchall()
    assert len(rows) == 1 and rows[0][0] == "notes.txt" and rows[0][1].startswith("binary content")
    assert rows[0][2] == 8
    (corpus / "notes.txt").unlink()  # a reject whose file is gone goes too
    _ingest(db, corpus)
    assert _rejects(db) == {}


def test_changed_records_in_several_files_are_counted_and_stored_with_their_metadata(
    db: Database, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"

    def write(name: str, records: dict[str, str]) -> None:
        lines = [json.dumps({"id": i, "text": t, "metadata": {"file": name, "id": i}}) for i, t in records.items()]
        (corpus / name).write_text("\n".join(lines) + "\n")

    write("a.jsonl", {"a1": "one", "a2": "two", "a3": "three", "a4": "four"})
    write("b.jsonl", {"b1": "one", "b2": "two", "b3": "three"})
    _ingest(db, corpus)
    # In each file: two records unchanged, then one edited (a later one), one dropped; a4 edited as well.
    write("a.jsonl", {"a1": "one", "a2": "two", "a3": "three, edited", "a4": "four, edited"})
    write("b.jsonl", {"b1": "one", "b3": "three, edited"})
    stats = _ingest(db, corpus)
    assert (stats.unchanged_documents, stats.updated, stats.deleted, stats.added) == (3, 3, 1, 0)
    assert _documents(db) == {"a1": "one", "a2": "two", "a3": "three, edited", "a4": "four, edited",
                              "b1": "one", "b3": "three, edited"}  # fmt: skip
    write("a.jsonl", {"a1": "one"})
    write("b.jsonl", {"b1": "one"})
    assert _ingest(db, corpus).deleted == 4  # three from a.jsonl, one from b.jsonl
    with db.connect() as conn:
        assert conn.execute("SELECT metadata FROM documents WHERE doc_id = 'b1'").fetchone() == (
            {"file": "b.jsonl", "id": "b1"},
        )


def test_parser_limits_reach_the_parser_and_partial_rejects_keep_the_file_size(db: Database, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "long.txt").write_text("word " * 40)  # 199 characters once the final space is stripped
    (corpus / "short.txt").write_text("word")
    body = json.dumps({"id": "fine", "text": "fine"}) + "\n{broken\n"
    (corpus / "mixed.jsonl").write_text(body)
    limits = ParserLimits(reader=ReaderLimits(max_chars=100))
    stats = ingest_corpus(db, corpus, max_document_bytes=10_000, parser_limits=limits)
    assert set(_documents(db)) == {"short.txt", "fine"}
    assert stats.rejected == [
        ("long.txt", "199 characters extracted, over SAGE_MAX_EXTRACTED_CHARS (100)"),
        ("mixed.jsonl:2", "mixed.jsonl:2: invalid JSON (Expecting property name enclosed in double quotes)"),
    ]
    with db.connect() as conn:
        sizes = dict(conn.execute("SELECT path, size_bytes FROM rejected_documents").fetchall())
    assert sizes == {"long.txt": 200, "mixed.jsonl:2": len(body)}
