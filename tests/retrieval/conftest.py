"""One search corpus, indexed once per module: PubMedQA abstracts in two categories, Chinese
documents, and a rare category for selective filters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sage_platform.platform import Platform
from tests.conftest import indexed_corpus_platform, pubmedqa_items

CHINESE = {
    "zh-panda": "大熊猫是中国特有的动物，主要生活在四川的竹林里。大熊猫每天要吃很多竹子，性格温和。",
    "zh-wall": "长城是中国古代的军事防御工程，东起山海关，西至嘉峪关，全长两万多公里。",
    "zh-tea": "中国是茶的故乡，绿茶、红茶和乌龙茶各有特色。喝茶是一种生活方式。",
}


@dataclass
class SearchCorpus:
    platform: Platform
    pubmed: list[tuple[str, dict]]


@pytest.fixture(scope="module")
def search_corpus(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchCorpus]:
    root = tmp_path_factory.mktemp("search")
    corpus = root / "corpus"
    corpus.mkdir()
    items = pubmedqa_items(40)
    with (corpus / "pubmed.jsonl").open("w") as out:
        for i, (pmid, item) in enumerate(items):
            category = "rare" if i < 3 else ("odd" if i % 2 else "even")
            record = {"id": pmid, "text": "\n\n".join(item["CONTEXTS"]), "title": item["QUESTION"],
                      "metadata": {"category": category}}  # fmt: skip
            out.write(json.dumps(record) + "\n")
    with (corpus / "chinese.jsonl").open("w") as out:
        for doc_id, text in CHINESE.items():
            out.write(
                json.dumps({"id": doc_id, "text": text, "metadata": {"category": "zh"}}, ensure_ascii=False) + "\n"
            )
    (corpus / "notes.md").write_text("# Notes\n\nThe data platform ingests documents incrementally.")
    platform = indexed_corpus_platform(pg_server, root, "sage_tpl_search_corpus")
    yield SearchCorpus(platform, items)
    platform.db.close()
