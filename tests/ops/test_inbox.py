"""inbox_sensor with Dagster's build_sensor_context: cursor, once per (path, hash), unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunRequest, SensorResult, SkipReason, build_sensor_context

from sage_platform.db import Database
from sage_platform.package_files import SAMPLE_CORPUS_DIR
from sage_platform.resources import SageResource
from sage_platform.sensors import inbox_sensor


def _evaluate(cursor: str | None) -> tuple[list[RunRequest], str | None, str | None]:
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(), cursor=cursor, resources={"sage": SageResource()}
    )
    result = inbox_sensor(context)
    if isinstance(result, SkipReason):
        return [], context.cursor, result.skip_message
    assert isinstance(result, SensorResult)
    return list(result.run_requests or []), result.cursor, None


@pytest.fixture
def inbox(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    monkeypatch.setenv("SAGE_INBOX_DIR", str(folder))
    return folder


def test_new_and_changed_files_launch_once_each_and_are_staged(inbox: Path, env: dict[str, str]) -> None:
    (inbox / "notes.md").write_text("# Notes\n\nBackups run nightly.")
    (inbox / "sub").mkdir()
    (inbox / "sub" / "faq.txt").write_text("How do I restore? With sage restore.")
    (inbox / ".upload.tmp").write_text("half a file")
    runs, cursor, _ = _evaluate(None)
    assert sorted(r.tags["sage/inbox_file"] for r in runs) == ["notes.md", "sub/faq.txt"]
    assert all(r.run_key == f"{r.tags['sage/inbox_file']}:{r.tags['sage/content_hash']}" for r in runs)
    corpus = Path(env["SAGE_CORPUS_DIR"])
    assert (corpus / "inbox" / "sub" / "faq.txt").read_text() == "How do I restore? With sage restore."

    again, cursor2, skip = _evaluate(cursor)
    assert again == [] and "no new or changed files" in (skip or "")
    (inbox / "notes.md").write_text("# Notes\n\nBackups run nightly at 02:00.")
    changed, _, _ = _evaluate(cursor2)
    assert [r.tags["sage/inbox_file"] for r in changed] == ["notes.md"]
    assert changed[0].run_key != next(r.run_key for r in runs if r.tags["sage/inbox_file"] == "notes.md")
    assert (corpus / "inbox" / "notes.md").read_text().endswith("at 02:00.")


def test_unreadable_files_are_reported_and_recorded_once(inbox: Path, settings) -> None:  # type: ignore[no-untyped-def]
    (inbox / "tool.exe").write_bytes(b"MZ\x00\x01")
    (inbox / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    runs, cursor, skip = _evaluate(None)
    assert runs == []
    assert "tool.exe (unsupported type .exe" in (skip or "") and "broken.pdf (unparsable" in (skip or "")
    with Database.from_settings(settings).connect() as conn:
        rows = conn.execute("SELECT path, reason FROM rejected_documents ORDER BY path").fetchall()
    assert [r[0] for r in rows] == ["inbox/broken.pdf", "inbox/tool.exe"]
    again, _, skip2 = _evaluate(cursor)  # not retried in a loop
    assert again == [] and "no new or changed files" in (skip2 or "")
    assert json.loads(cursor or "{}").keys() == {"tool.exe", "broken.pdf"}


def test_without_an_inbox_the_sensor_says_so(env: dict[str, str]) -> None:
    assert _evaluate(None)[2] == "SAGE_INBOX_DIR is not set"


def test_the_packaged_sample_corpus_is_never_written_to(inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGE_CORPUS_DIR")  # the default: the sample corpus inside the package
    (inbox / "notes.md").write_text("# Notes")
    runs, _, skip = _evaluate(None)
    assert runs == [] and "SAGE_CORPUS_DIR set to a folder of yours" in (skip or "")
    assert not (SAMPLE_CORPUS_DIR / "inbox").exists()
