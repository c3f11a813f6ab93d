import json
from pathlib import Path

import pytest

from sage_platform.evaluation import GoldenSetError, load_golden_set


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_valid_set_loads(tmp_path: Path) -> None:
    good = {"id": "q1", "question": "Why?", "golden_answers": ["Because."], "relevant_doc_ids": ["a.md"]}
    questions = load_golden_set(_write(tmp_path / "g.jsonl", [json.dumps(good), "", json.dumps({**good, "id": 2})]))
    assert [q.id for q in questions] == ["q1", "2"]
    assert questions[0].relevant_doc_ids == ["a.md"]


def test_every_bad_line_is_named(tmp_path: Path) -> None:
    good = {"id": "q1", "question": "Why?", "golden_answers": ["Because."], "relevant_doc_ids": []}
    path = _write(
        tmp_path / "g.jsonl",
        [
            json.dumps(good),
            "{oops",
            json.dumps({**good, "id": "q2", "question": ""}),
            json.dumps({**good, "id": "q3", "golden_answers": "not a list"}),
            json.dumps({**good}),
            "[1, 2]",
        ],
    )
    with pytest.raises(GoldenSetError) as caught:
        load_golden_set(path)
    message = str(caught.value)
    assert "5 problem(s)" in message
    assert "line 2: invalid JSON" in message
    assert "line 3: 'question' must be a non-empty string" in message
    assert "line 4: 'golden_answers' must be a list of strings" in message
    assert "line 5: duplicate id 'q1' (first on line 1)" in message
    assert "line 6: a line must hold a JSON object" in message


def test_missing_and_empty_sets_are_errors(tmp_path: Path) -> None:
    with pytest.raises(GoldenSetError, match="does not exist"):
        load_golden_set(tmp_path / "missing.jsonl")
    with pytest.raises(GoldenSetError, match="no questions"):
        load_golden_set(_write(tmp_path / "empty.jsonl", [""]))
