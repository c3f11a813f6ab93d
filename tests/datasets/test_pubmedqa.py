import json
from pathlib import Path

import pytest

from sage_platform.cli import main
from sage_platform.datasets import import_pubmedqa
from sage_platform.evaluation import load_golden_set
from sage_platform.ingest import read_document
from tests.conftest import PUBMEDQA


def test_import_writes_one_document_per_pmid_and_a_labelled_golden_set(tmp_path: Path) -> None:
    stats = import_pubmedqa(PUBMEDQA, tmp_path / "pqa")
    source = json.loads(PUBMEDQA.read_text())
    assert stats.items == len(source) == 500
    documents = read_document("pubmedqa.jsonl", stats.corpus.read_bytes()).documents
    assert [d.doc_id for d in documents] == list(source)
    first_id, first = next(iter(source.items()))
    assert documents[0].text == "\n\n".join(first["CONTEXTS"]) and first["QUESTION"] not in documents[0].text
    assert documents[0].metadata["year"] == first["YEAR"]
    questions = load_golden_set(stats.golden)
    assert len(questions) == 500
    assert (questions[0].id, questions[0].golden_answers, questions[0].relevant_doc_ids, questions[0].label) == (
        first_id, [first["LONG_ANSWER"]], [first_id], first["final_decision"],
    )  # fmt: skip


def test_bad_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1": {"QUESTION": "q", "CONTEXTS": [], "LONG_ANSWER": "a", "final_decision": "yes"}}))
    with pytest.raises(ValueError, match="item 1: CONTEXTS must be a non-empty list"):
        import_pubmedqa(bad, tmp_path / "out")
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="keyed by PMID"):
        import_pubmedqa(bad, tmp_path / "out")
    with pytest.raises(ValueError, match="does not exist"):
        import_pubmedqa(tmp_path / "missing.json", tmp_path / "out")


def test_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "import", "pubmedqa", str(PUBMEDQA), "--out", str(tmp_path / "pqa")]) == 0
    out = capsys.readouterr().out
    assert "imported 500 items" in out and "sage materialize" in out
    assert main(["datasets", "import", "pubmedqa", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 1
