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


def test_sage_search_asks_the_running_server_of_its_database(
    start_server, pg_server: str, tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import urlsplit

    from sage_platform.cli import main

    (tmp_path / "kb").mkdir()
    platform = indexed_platform(pg_server, tmp_path / "kb", 20)
    url = platform.settings.database_url
    server: AgentClient = start_server(database_url=url)
    port = str(urlsplit(server.url).port)
    question = pubmedqa_items(20)[7][1]["QUESTION"]
    monkeypatch.setenv("SAGE_DATABASE_URL", url)

    assert main(["search", question, "-k", "3", "--json", "--local"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert server.state.retrievers == {}
    assert main(["search", question, "-k", "3", "--json", "--port", port]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert list(server.state.retrievers) == ["hybrid"]  # the server searched
    assert [(h["rank"], h["doc_id"], h["chunk_id"]) for h in remote] == [
        (h["rank"], h["doc_id"], h["chunk_id"]) for h in local
    ]
    assert main(["search", "x", "--port", port, "--filter", "colour=red"]) == 1  # the server's 400, said once
    assert "unknown filter key 'colour'" in capsys.readouterr().err

    # A server on another database is not asked.
    other = start_server(database_url=url, data_dir=str(tmp_path / "elsewhere"))
    monkeypatch.setenv("SAGE_DATABASE_URL", url + "&application_name=another")
    assert main(["search", question, "-k", "3", "--json", "--port", str(urlsplit(other.url).port)]) == 0
    assert other.state.retrievers == {}
    platform.db.close()
