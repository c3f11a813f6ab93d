"""Hostile files in the corpus and the inbox: each rejected with a reason, the rest ingested, nothing lost."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sage_platform.db import Database
from sage_platform.ingest import ingest_corpus
from sage_platform.ingest.corpus import MassDeletion
from sage_platform.ingest.isolation import ParserLimits, ParserProcess
from sage_platform.ingest.readers import ReaderLimits, Rejected
from sage_platform.ops.inbox import scan_inbox, stage
from tests.pdf import make_text_bomb_pdf


def _state(db: Database) -> tuple[set[str], dict[str, str]]:
    with db.connect() as conn:
        documents = {row[0] for row in conn.execute("SELECT doc_id FROM documents")}
        rejects = dict(conn.execute("SELECT path, reason FROM rejected_documents").fetchall())
    return documents, rejects


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nA document that must be ingested whatever its neighbours do.")
    return folder


def test_deeply_nested_json_is_rejected_and_the_run_goes_on(db: Database, corpus: Path) -> None:
    (corpus / "nested.json").write_bytes(b"[" * 200_000)
    (corpus / "nested.jsonl").write_bytes(b'{"id": "x", "text": ' + b"[" * 200_000 + b"\n")
    stats = ingest_corpus(db, corpus, max_document_bytes=1_000_000)
    documents, rejects = _state(db)
    assert documents == {"good.md"}
    assert "nested too deeply" in rejects["nested.json"]
    assert stats.added == 1 and len(stats.rejected) == 2


def test_a_pdf_text_bomb_stops_at_the_limit(db: Database, corpus: Path) -> None:
    bomb = make_text_bomb_pdf(pages=10, characters=100_000)  # 2 KB that extract to 1,000,018 characters
    assert len(bomb) < 3000
    (corpus / "bomb.pdf").write_bytes(bomb)
    ingest_corpus(db, corpus, max_document_bytes=1_000_000)
    documents, rejects = _state(db)
    assert documents == {"good.md"}
    assert "decompression bomb" in rejects["bomb.pdf"] and "after 3 pages" in rejects["bomb.pdf"]


def test_page_time_and_memory_limits(tmp_path: Path) -> None:
    pages = ParserProcess(ParserLimits(reader=ReaderLimits(max_pdf_pages=5)))
    with pages, pytest.raises(Rejected, match="10 pages, over SAGE_MAX_PDF_PAGES"):
        pages.parse("long.pdf", make_text_bomb_pdf(pages=10, characters=10))
    unlimited = ReaderLimits(max_chars=10**9, max_pdf_chars_per_byte=10**6)
    slow = ParserProcess(ParserLimits(timeout_s=0.3, reader=unlimited))
    with slow:
        with pytest.raises(Rejected, match="longer than SAGE_PARSER_TIMEOUT_S"):
            slow.parse("slow.pdf", make_text_bomb_pdf(pages=300, characters=100_000))
        assert slow.parse("next.md", b"# Next\n\nstill parsed").documents[0].text.endswith("still parsed")
        assert slow.restarts == 1
    small = ParserProcess(ParserLimits(memory_mb=256))
    with small:
        with pytest.raises(Rejected, match="SAGE_PARSER_MEMORY_MB"):
            small.parse("huge.json", b"[" + b",".join([b'"xxxxxxxxxxxxxxxx"'] * 6_000_000) + b"]")
        assert small.parse("after.txt", b"fine").documents[0].text == "fine"


def test_links_fifos_and_devices_are_never_read(db: Database, corpus: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the root password is hunter2")
    secret.chmod(0o600)
    (corpus / "leak.txt").symlink_to(secret)
    (corpus / "zero.txt").symlink_to("/dev/zero")
    (corpus / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(corpus / "pipe.txt")
    stats = ingest_corpus(db, corpus, max_document_bytes=1_000_000)  # a FIFO read would block forever
    documents, rejects = _state(db)
    assert documents == {"good.md"}
    assert "symbolic link" in rejects["leak.txt"] and "symbolic link" in rejects["zero.txt"]
    assert not [path for path in (*documents, *rejects) if path.startswith("elsewhere/")]  # a folder link: not walked
    assert "FIFO" in rejects["pipe.txt"]
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM documents WHERE text LIKE '%hunter2%'").fetchone() == (0,)
    assert stats.added == 1


def test_the_inbox_never_stages_a_link_and_stages_private_copies(db: Database, tmp_path: Path) -> None:
    inbox, corpus = tmp_path / "inbox", tmp_path / "corpus"
    inbox.mkdir()
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nnot for the corpus")
    secret.chmod(0o600)
    (inbox / "secret.md").symlink_to(secret)
    (inbox / "notes.md").write_text("# Notes\n\nshared on purpose")
    scan = scan_inbox(inbox, {}, 1_000_000)
    assert [i.path for i in scan.readable] == ["notes.md"]
    assert [(i.path, "symbolic link" in (i.reason or "")) for i in scan.unreadable] == [("secret.md", True)]
    staged = stage(scan.readable[0], inbox, corpus, 1_000_000)
    assert stat.S_IMODE(staged.stat().st_mode) == 0o600
    assert not (corpus / "inbox" / "secret.md").exists()
    (inbox / "notes.md").unlink()
    (inbox / "notes.md").symlink_to(secret)  # swapped for a link after the scan
    with pytest.raises(Rejected, match="symbolic link"):
        stage(scan.readable[0], inbox, corpus, 1_000_000)


def test_an_emptied_corpus_folder_deletes_nothing_unless_forced(db: Database, corpus: Path) -> None:
    for i in range(4):
        (corpus / f"doc{i}.md").write_text(f"# Doc {i}\n\ntext {i}")
    ingest_corpus(db, corpus, max_document_bytes=1_000_000)
    for path in corpus.iterdir():
        path.unlink()  # an unmounted volume looks like this
    with pytest.raises(MassDeletion, match=rf"refusing to delete 5 of 5 documents \(100%\).*{corpus}"):
        ingest_corpus(db, corpus, max_document_bytes=1_000_000)
    assert len(_state(db)[0]) == 5
    (corpus / "doc0.md").write_text("# Doc 0\n\ntext 0")
    (corpus / "doc1.md").write_text("# Doc 1\n\ntext 1")
    (corpus / "doc2.md").write_text("# Doc 2\n\ntext 2")
    stats = ingest_corpus(db, corpus, max_document_bytes=1_000_000)  # 2 of 5 deleted: under half
    assert stats.deleted == 2
    for path in corpus.iterdir():
        path.unlink()
    forced = ingest_corpus(db, corpus, max_document_bytes=1_000_000, max_delete_fraction=1.0)
    assert forced.deleted == 3 and _state(db)[0] == set()
