"""inbox_sensor with Dagster's build_sensor_context: one run per tick, staged in the run, once per (path, hash)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    ExecuteInProcessResult,
    RunRequest,
    SensorResult,
    SkipReason,
    build_sensor_context,
    evaluate_automation_conditions,
)

from sage_platform.db import Database
from sage_platform.package_files import SAMPLE_CORPUS_DIR
from sage_platform.resources import SageResource
from sage_platform.sensors import inbox_sensor
from tests.conftest import write_pubmedqa
from tests.graph import metadata, run_graph


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


def test_one_run_per_tick_stages_and_ingests_what_changed(inbox: Path, env: dict[str, str], settings) -> None:  # type: ignore[no-untyped-def]
    (inbox / "notes.md").write_text("# Notes\n\nBackups run nightly.")
    (inbox / "sub").mkdir()
    (inbox / "sub" / "faq.txt").write_text("How do I restore? With sage restore.")
    (inbox / ".upload.tmp").write_text("half a file")
    runs, cursor, _ = _evaluate(None)
    assert len(runs) == 1 and runs[0].tags["sage/inbox_files"] == "2"  # every changed file, one run
    files = runs[0].run_config["ops"]["raw_documents"]["config"]["inbox_files"]
    assert sorted(files) == ["notes.md", "sub/faq.txt"]
    corpus = Path(env["SAGE_CORPUS_DIR"])
    staging = Path(env["SAGE_DATA_DIR"]).resolve() / "inbox"
    assert not staging.exists()  # the tick only scans; the run stages

    write_pubmedqa(settings.corpus_dir, settings.eval_set, 6)
    instance = DagsterInstance.ephemeral()
    run_graph(instance)  # the graph as it was before the inbox files
    from sage_platform.definitions import defs

    before = evaluate_automation_conditions(defs=defs, instance=instance)
    assert before.total_requested == 0  # everything is up to date
    result = _launch(runs[0], instance)
    assert metadata(result, "raw_documents")["inbox_files_staged"] == 2
    assert (staging / "sub" / "faq.txt").read_text() == "How do I restore? With sage restore."
    assert not (corpus / "inbox").exists()  # the corpus folder is never written to
    materialized = {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}
    assert "pgvector_index" in materialized and "rag_answers" not in materialized  # no LLM calls in this run
    with Database.from_settings(settings).connect() as conn:
        found = conn.execute("SELECT count(*) FROM chunks WHERE doc_id = 'inbox/notes.md'").fetchone()
    assert found is not None and found[0] == 1
    # The answers and the report follow the new index by declarative automation.
    requested = evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=before.cursor
    ).get_requested_partitions
    assert {key: requested(AssetKey(key)) for key in ("rag_answers", "evaluation_report")} == {
        "rag_answers": {None},
        "evaluation_report": {None},
    }

    again, cursor2, skip = _evaluate(cursor)
    assert again == [] and "no new or changed files" in (skip or "")
    (inbox / "notes.md").write_text("# Notes\n\nBackups run nightly at 02:00.")
    changed, _, _ = _evaluate(cursor2)
    assert list(changed[0].run_config["ops"]["raw_documents"]["config"]["inbox_files"]) == ["notes.md"]
    assert changed[0].run_key != runs[0].run_key
    _launch(changed[0], instance)
    assert (staging / "notes.md").read_text().endswith("at 02:00.")


def test_a_file_changed_after_the_scan_is_skipped_and_launched_again(inbox: Path, env: dict[str, str]) -> None:
    (inbox / "notes.md").write_text("first")
    runs, cursor, _ = _evaluate(None)
    (inbox / "notes.md").write_text("second, written after the scan")
    result = _launch(runs[0], DagsterInstance.ephemeral())
    assert metadata(result, "raw_documents")["inbox_files_staged"] == 0
    assert not (Path(env["SAGE_DATA_DIR"]).resolve() / "inbox" / "notes.md").exists()
    again, _, _ = _evaluate(cursor)
    assert list(again[0].run_config["ops"]["raw_documents"]["config"]["inbox_files"]) == ["notes.md"]


def _launch(request: RunRequest, instance: DagsterInstance) -> ExecuteInProcessResult:
    from sage_platform.definitions import defs

    return defs.resolve_job_def("inbox_job").execute_in_process(run_config=request.run_config, instance=instance)


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


def test_the_inbox_works_beside_the_packaged_sample_and_never_writes_into_it(
    inbox: Path, env: dict[str, str], settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SAGE_CORPUS_DIR")  # the default: the sample corpus inside the package
    (inbox / "notes.md").write_text("# Notes\n\nThe sample corpus stays as shipped.")
    before = sorted(p.name for p in SAMPLE_CORPUS_DIR.rglob("*"))
    runs, _, _ = _evaluate(None)
    assert len(runs) == 1
    _launch(runs[0], DagsterInstance.ephemeral())
    assert sorted(p.name for p in SAMPLE_CORPUS_DIR.rglob("*")) == before
    with Database.from_settings(settings).connect() as conn:
        sources = {row[0] for row in conn.execute("SELECT source FROM documents")}
    assert "inbox/notes.md" in sources and len(sources) > 1  # the sample's documents and the inbox file


def test_staging_takes_plain_paths_only(tmp_path: Path) -> None:
    """A run's config names the files to stage; a path that climbs out is refused, nothing is read or written."""
    from sage_platform.hashing import sha256_bytes
    from sage_platform.ops.inbox import stage_files

    inbox, staging = tmp_path / "in" / "box", tmp_path / "data" / "inbox"
    inbox.mkdir(parents=True)
    secret = b"not for the inbox"
    (tmp_path / "in" / "outside.md").write_bytes(secret)
    (inbox / "ok.md").write_text("fine")
    digest = sha256_bytes(secret)
    files = {"../outside.md": digest, "sub/../../outside.md": digest, "/etc/hostname": digest, ".hidden.md": digest,
             "ok.md": sha256_bytes(b"fine")}  # fmt: skip
    staged, skipped = stage_files(files, inbox, staging, 1_000_000)
    assert staged == ["ok.md"]
    assert sorted(path for path, _ in skipped) == sorted(set(files) - {"ok.md"})
    assert all("not a plain path inside the inbox" in reason for _, reason in skipped)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "data/inbox/ok.md", "in/box/ok.md", "in/outside.md"]  # fmt: skip
