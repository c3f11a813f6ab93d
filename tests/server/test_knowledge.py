"""knowledge_search: the platform's retrievers as an agent tool, with doc ids as citations."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import indexed_platform, pubmedqa_items
from tests.server.conftest import AgentClient


def test_knowledge_search_returns_cited_chunks_from_the_named_retrievers(
    start_server, pg_server: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "kb").mkdir()
    platform = indexed_platform(pg_server, tmp_path / "kb", 20)
    server: AgentClient = start_server(database_url=platform.settings.database_url)
    pmid, item = pubmedqa_items(20)[7]
    question = item["QUESTION"]
    script = "[[tool:knowledge_search " + json.dumps({"query": question, "k": 3}) + "]] "
    for bases in (None, ["dense", "sparse"]):
        extra = {"knowledge_bases": bases} if bases else {}
        messages = server.stream(script + question, **extra)
        result = next(m["content"] for m in messages if m["type"] == "tool_call_result")
        assert result["ok"], result
        hits = json.loads(result["result"])["hits"]
        assert hits[0]["doc_id"] == pmid  # the abstract the question was written for
        assert {h["knowledge_base"] for h in hits} == set(bases or ["hybrid"])
        assert all(h["text"] and h["chunk_id"] for h in hits)
        assert pmid in messages[-3]["content"]  # the model saw the citations
    platform.db.close()
