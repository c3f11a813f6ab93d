"""Requests written for the original server: its body fields, tool-server spellings, reply wrapper,
skills and agent definitions, each doing here what it did there."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import requests

from sage_platform.agent.requests import McpServerSpec, StreamRequest
from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient, types_of


def test_a_request_with_every_original_field_gets_its_meaning(server: AgentClient, llm: ChatStub) -> None:
    body = {
        "session_id": "orig-1", "user_id": "default", "agent_id": "sage", "memory_type": "session",
        "agent_mode": "simple", "max_loop_count": 3, "deep_thinking": False, "force_summary": False,
        "context_budget_config": {"context_history_ratio": 0.2, "context_active_ratio": 0.3,
                                  "context_max_new_message_ratio": 0.4, "context_recent_turns": 1},
        "available_tools": ["knowledge_search"], "available_skills": [], "available_knowledge_bases": ["dense"],
        "available_sub_agent_ids": [], "custom_sub_agents": [], "extra_mcp_config": {},
        "system_context": {"project": "apollo", "user_name": "Ada"}, "system_prefix": "Always be brief.",
        "llm_model_config": {"model": "stub-model", "baseUrl": llm.url, "apiKey": "sk-client", "maxTokens": 64,
                             "temperature": 0.1, "topP": 0.5},
    }  # fmt: skip
    messages = server.stream("hello", **body)
    assert messages[-3]["type"] == "final_answer" and messages[-1]["session_id"] == "orig-1"
    sent = llm.requests[-1]
    system = sent["messages"][0]["content"]
    assert system.startswith("Always be brief.\n\nYou are Sage") and "- project: apollo\n- user_name: Ada" in system
    assert (sent["max_tokens"], sent["top_p"], sent["temperature"]) == (64, 0.5, 0.1)
    assert [t["function"]["name"] for t in sent["tools"]] == ["knowledge_search"]
    assert llm.authorizations[-1] == "Bearer sk-client"
    assert StreamRequest.model_validate(body | {"messages": [{"role": "user", "content": "x"}]}).knowledge_bases == [
        "dense"]  # fmt: skip


def test_extra_mcp_config_adds_tool_servers_for_one_run_and_only_for_admins(
    start_server: Callable[..., AgentClient], mcp_url: str
) -> None:
    server = start_server(api_keys="alice=key-alice", admin_keys="key-root")
    root = replace(server, headers={"Authorization": "Bearer key-root"})
    alice = replace(server, headers={"Authorization": "Bearer key-alice"})
    extra = {"mcpServers": {"calc": {"streamable_http_url": mcp_url}}}
    messages = root.stream('[[tool:calc__add {"a": 1, "b": 2}]] add', extra_mcp_config=extra)
    assert [m["content"]["result"] for m in messages if m["type"] == "tool_call_result"] == ["3"]
    after = root.stream('[[tool:calc__add {"a": 1, "b": 2}]] add')  # gone once its run ended
    assert "no tool named 'calc__add'" in [m for m in after if m["type"] == "tool_call_result"][0]["content"]["result"]
    refused = alice.post_stream("add", extra_mcp_config=extra)
    assert refused.status_code == 403 and "extra_mcp_config needs an admin key" in refused.json()["detail"]


def test_tool_servers_in_the_original_spelling_with_a_tool_list_and_a_preview(
    server: AgentClient, mcp_url: str
) -> None:
    spec = {"name": "calc", "protocol": "streamable_http", "kind": "custom", "streamable_http_url": mcp_url,
            "description": "Arithmetic.", "tools": ["add"]}  # fmt: skip
    added = server.post("/api/mcp/add", spec)
    assert added.status_code == 201, added.text
    listed = server.get("/api/mcp/list").json()[0]
    assert (listed["kind"], listed["description"], listed["tool_allow_list"]) == ("custom", "Arithmetic.", ["add"])
    assert [t["name"] for t in listed["tools"]] == ["calc__add"]  # only the listed tool is offered
    assert McpServerSpec.model_validate({"name": "s", "sse_url": "http://127.0.0.1:9/sse"}).protocol == "sse"

    preview = server.post("/api/mcp/calc2/preview", {"name": "calc2", "streamable_http_url": mcp_url})
    assert preview.status_code == 200, preview.text
    tools = {t["name"]: t for t in preview.json()["tools"]}
    assert set(tools) == {"calc2__add", "calc2__echo", "calc2__explode", "calc2__meet"}
    assert tools["calc2__add"]["parameters"]["required"] == ["a", "b"]
    assert [s["name"] for s in server.get("/api/mcp/list").json()] == ["calc"]  # a preview registers nothing
    registered = server.post("/api/mcp/calc/preview").json()
    assert [t["name"] for t in registered["tools"]] == ["calc__add"]


def test_the_reply_wrapper_is_there_when_asked_for(server: AgentClient, mcp_url: str) -> None:
    server.post("/api/mcp/add", {"name": "calc", "url": mcp_url})
    plain = server.get("/api/mcp/list").json()
    wrapped = requests.get(f"{server.url}/api/mcp/list", headers={"X-Sage-Envelope": "1"}, timeout=30)
    assert wrapped.json() == {"code": 200, "message": "success", "data": plain}
    assert int(wrapped.headers["content-length"]) == len(wrapped.content)
    missing = server.delete("/api/mcp/ghost?envelope=1")
    assert missing.status_code == 404
    assert missing.json() == {"code": 404, "message": "no MCP server named 'ghost'", "data": None}
    response = server.post("/api/stream?envelope=1", {"messages": [{"role": "user", "content": "hi"}]})
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert types_of(lines)[-1] == "stream_end"  # streams are never wrapped


def test_skills_are_listed_selected_and_their_files_read_by_name_only(
    start_server: Callable[..., AgentClient], mcp_url: str, llm: ChatStub, tmp_path: Path
) -> None:
    skill = tmp_path / "skills" / "release-notes"
    (skill / "scripts").mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        "---\nname: release-notes\ndescription: Write release notes from a change list.\n"
        "allowed-tools: calc__echo\n---\nGroup changes by kind. Keep each line short.\n"
    )
    (skill / "template.md").write_text("## Added\n## Fixed\n")
    (skill / "scripts" / "collect.py").write_text("print('changes')\n")
    (skill / ".secret").write_text("hidden")
    (tmp_path / "skills" / "outside.txt").write_text("not a skill file")  # what ../outside.txt would reach
    (skill / "link.md").symlink_to(tmp_path / "skills" / "outside.txt")  # a link out of the folder: not a file of it
    server = start_server(skills_dir=tmp_path / "skills")
    server.post("/api/mcp/add", {"name": "calc", "url": mcp_url})
    assert server.get("/api/skills").json() == [{
        "name": "release-notes", "description": "Write release notes from a change list.", "tools": ["calc__echo"],
        "files": ["scripts/collect.py", "template.md"]}]  # fmt: skip

    reads = ('[[tool:read_skill_file {"skill": "release-notes", "file": "template.md"}]] '
             '[[tool:read_skill_file {"skill": "release-notes", "file": "../outside.txt"}]] notes')  # fmt: skip
    messages = server.stream(reads, available_skills=["release-notes"], available_tools=["knowledge_search"])
    system = llm.requests[0]["messages"][0]["content"]
    assert "## Skill: release-notes" in system and "Group changes by kind." in system
    offered = sorted(t["function"]["name"] for t in llm.requests[0]["tools"])
    assert offered == ["calc__echo", "knowledge_search", "read_skill_file"]  # the skill brings its tools
    results = [m["content"] for m in messages if m["type"] == "tool_call_result"]
    assert results[0] == {"ok": True, "name": "read_skill_file", "result": "## Added\n## Fixed\n"}
    assert not results[1]["ok"] and "has no file '../outside.txt'" in results[1]["result"]
    unknown = server.post_stream("x", available_skills=["nope"])
    assert unknown.status_code == 400 and "unknown skills: nope" in unknown.json()["detail"]


def test_agents_from_agent_setting_json_and_the_agents_api(
    start_server: Callable[..., AgentClient], llm: ChatStub, tmp_path: Path
) -> None:
    setting = tmp_path / "agent_setting.json"
    setting.write_text(json.dumps({
        "system_context": {"company": "Acme"},
        "workflows": {"release": "test, tag, publish"},
        "sub_agents": [{"name": "checker", "description": "Checks facts.", "system_prompt": "You check facts."}],
    }))  # fmt: skip
    server = start_server(preset_running_config_path=setting, api_keys="alice=key-alice", admin_keys="key-root")
    root = replace(server, headers={"Authorization": "Bearer key-root"})
    alice = replace(server, headers={"Authorization": "Bearer key-alice"})
    assert [a["name"] for a in alice.get("/api/agents").json()] == ["checker"]

    llm.inject["You are checker"] = ""
    messages = alice.stream('[[tool:checker {"task": "check the date"}]] go', agent_mode="team",
                            available_sub_agent_ids=["checker"])  # fmt: skip
    assert {m["agent_name"] for m in messages[:-1]} == {"sage", "checker"}
    lead_system = llm.requests[0]["messages"][0]["content"]
    assert "- company: Acme" in lead_system and "- release: test, tag, publish" in lead_system

    poet = {"name": "poet", "description": "Writes verse.", "system_prompt": "You write verse."}
    assert alice.post("/api/agents", poet).status_code == 403
    assert root.post("/api/agents", poet).status_code == 201
    alice.stream("a poem", agent_id="poet")
    assert llm.requests[-1]["messages"][0]["content"].startswith("You write verse.")
    unknown = alice.post_stream("x", agent_id="ghost")
    assert unknown.status_code == 400 and "unknown agents: ghost" in unknown.json()["detail"]
