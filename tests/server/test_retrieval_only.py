"""With no language model configured, the agent answers from the knowledge base, labelled as such."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.chat_stub import ChatStub
from tests.conftest import indexed_platform, pubmedqa_items
from tests.server.conftest import AgentClient, types_of


def test_no_llm_means_a_cited_retrieval_only_answer(
    start_server: Callable[..., AgentClient], pg_server: str, llm: ChatStub, tmp_path: Path
) -> None:
    (tmp_path / "kb").mkdir()
    platform = indexed_platform(pg_server, tmp_path / "kb", 20)
    server = start_server(database_url=platform.settings.database_url, default_llm_model_name=None,
                          default_llm_api_base_url=None)  # fmt: skip
    pmid, item = pubmedqa_items(20)[4]
    messages = server.stream(item["QUESTION"], session_id="no-llm")
    kinds = types_of(messages)
    assert kinds[:2] == ["tool_call", "tool_call_result"] and kinds[-2:] == ["final_answer", "stream_end"]
    assert set(kinds[2:-2]) == {"assistant_text"}  # streamed word by word
    final = messages[-2]
    assert (
        final["metadata"]["mode"] == "retrieval_only"
        and "no language model is configured" in final["metadata"]["reason"]
    )
    assert f"[{pmid}]" in final["content"]  # cites the abstract the question was written for
    sentence = final["content"].split(" [")[0].split(". ")[0]
    assert sentence and sentence in " ".join(item["CONTEXTS"])  # its sentences are the document's own
    assert llm.requests == []  # no model was called
    history = server.get("/api/sessions/no-llm/messages").json()["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    platform.db.close()


def test_no_llm_and_no_index_yet_says_both(start_server: Callable[..., AgentClient]) -> None:
    server = start_server(default_llm_model_name=None, default_llm_api_base_url=None)
    final = [m for m in server.stream("what is this?") if m["type"] == "final_answer"][0]
    assert final["content"].startswith("I could not search the knowledge base (") and "no index" in final["content"]
    assert final["metadata"]["mode"] == "retrieval_only"
