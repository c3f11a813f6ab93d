"""PubMedQA (``ori_pqal.json`` shape) into the platform's corpus and golden-set format.

- the corpus: one JSONL record per PMID, its text the abstract's CONTEXTS (not the question, so
  retrieval has to work for it), with year, MeSH terms and section labels as metadata;
- the golden set: the QUESTION, LONG_ANSWER as the golden answer, the PMID as the relevant
  document, and ``final_decision`` (yes/no/maybe) as the label scored by accuracy.

Usage::

    stats = import_pubmedqa(Path("ori_pqal.json"), Path(".sage/pubmedqa"))
    # .sage/pubmedqa/corpus/pubmedqa.jsonl and .sage/pubmedqa/golden.jsonl
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABELS = {"yes", "no", "maybe"}


@dataclass(frozen=True)
class ImportStats:
    items: int
    corpus: Path
    golden: Path


def _item_error(pmid: str, item: Any) -> str | None:
    if not isinstance(item, dict):
        return f"item {pmid}: not an object"
    contexts = item.get("CONTEXTS")
    if not isinstance(contexts, list) or not contexts or not all(isinstance(c, str) for c in contexts):
        return f"item {pmid}: CONTEXTS must be a non-empty list of strings"
    for key in ("QUESTION", "LONG_ANSWER"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            return f"item {pmid}: {key} must be a non-empty string"
    if item.get("final_decision") not in LABELS:
        return f"item {pmid}: final_decision must be one of yes, no, maybe"
    return None


def import_pubmedqa(source: Path, out_dir: Path) -> ImportStats:
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{source} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{source} is not JSON: line {error.lineno}: {error.msg}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{source} must be a JSON object keyed by PMID (the ori_pqal.json shape)")
    problems = [p for p in (_item_error(pmid, item) for pmid, item in data.items()) if p]
    if problems:
        raise ValueError(f"{source}: {len(problems)} bad item(s): " + "; ".join(problems[:10]))
    corpus_dir = out_dir / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    corpus, golden = corpus_dir / "pubmedqa.jsonl", out_dir / "golden.jsonl"
    with corpus.open("w", encoding="utf-8") as docs, golden.open("w", encoding="utf-8") as questions:
        for pmid, item in data.items():
            metadata = {"year": item.get("YEAR"), "meshes": item.get("MESHES", []), "sections": item.get("LABELS", [])}
            docs.write(json.dumps({"id": pmid, "text": "\n\n".join(item["CONTEXTS"]), "metadata": metadata}) + "\n")
            questions.write(
                json.dumps(
                    {
                        "id": pmid,
                        "question": item["QUESTION"],
                        "golden_answers": [item["LONG_ANSWER"]],
                        "relevant_doc_ids": [pmid],
                        "label": item["final_decision"],
                    }
                )
                + "\n"
            )
    return ImportStats(len(data), corpus, golden)
