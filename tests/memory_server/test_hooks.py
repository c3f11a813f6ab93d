"""Coding-agent hooks, fed recorded Claude Code hook payloads, against a real memory server."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from sage_platform.cli import main
from sage_platform.config import Settings
from tests.mcp_tool_server import free_port
from tests.memory_server.conftest import TOKEN, payload, with_client

RECORDED = Path(__file__).parent / "hook_payloads"


@pytest.fixture
def settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """No content-based deduplication: a turn saved once must be so by its idempotency key alone."""
    monkeypatch.setenv("SAGE_MEMORY_DEDUP_SECONDS", "0")
    return Settings()


def hook(
    event: str, body: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(body)))
    assert main(["memory", "hook", event]) == 0  # a hook never blocks the client
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_stop_saves_the_turn_once_and_the_next_prompt_gets_it_back(
    mcp_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("SAGE_MCP_URL", mcp_url)
    monkeypatch.setenv("SAGE_MCP_TOKEN", TOKEN)
    transcript = tmp_path / "session.jsonl"
    transcript.write_text((RECORDED / "transcript.jsonl").read_text())
    stop = json.loads((RECORDED / "stop.json").read_text()) | {"transcript_path": str(transcript)}

    # (stderr also holds the in-process server's log lines in this test)
    out, err = hook("stop", stop, monkeypatch, capsys)
    assert out == "" and "sage memory hook: saved" in err.splitlines()
    out, err = hook("stop", stop, monkeypatch, capsys)  # fired twice
    assert out == "" and "sage memory hook: already saved" in err.splitlines()
    stored = with_client(mcp_url, lambda s: s.call_tool("search_memory", {"query": "backup test", "limit": 10}))
    hits = payload(stored)["hits"]
    assert len(hits) == 1 and hits[0]["session_id"] == stop["session_id"]
    assert hits[0]["user_input"] == "Why does the nightly backup test fail on CI?"  # the last prompt, not /clear
    assert hits[0]["assistant_response"] == (
        "Let me read the test first.\n\nThe test sleeps five seconds and hopes the backup is done; on the slower CI "
        "runners it is not. Wait on the backup's completion event instead of sleeping.")  # fmt: skip

    prompt = json.loads((RECORDED / "user_prompt_submit.json").read_text())
    out, _ = hook("user-prompt-submit", prompt, monkeypatch, capsys)
    assert out.startswith("Relevant memories from earlier work (Sage memory server):\n")
    assert "Wait on the backup's completion event" in out


def test_hooks_never_block_the_client(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SAGE_MCP_URL", f"http://127.0.0.1:{free_port()}/mcp")  # nobody listens
    out, err = hook("user-prompt-submit", {"prompt": "anything"}, monkeypatch, capsys)
    assert out == "" and err.startswith("sage memory hook: ")
    out, err = hook("stop", {"session_id": "s", "transcript_path": "/nonexistent.jsonl"}, monkeypatch, capsys)
    assert out == "" and "no transcript at '/nonexistent.jsonl'" in err


def test_connect_issues_a_token_that_works_and_registers_it(
    mcp_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake = tmp_path / "bin" / "claude"  # records how it was called, as the real CLI would be
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path / 'argv'}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SAGE_MCP_URL", mcp_url)
    assert main(["mcp", "connect", "claude", "--user", "ada"]) == 0
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[:6] == ["mcp", "add", "--transport", "http", "sage", mcp_url] and argv[6] == "--header"
    token = argv[7].removeprefix("Authorization: Bearer ")
    stats = with_client(mcp_url, lambda s: s.call_tool("get_memory_stats", {}), token=token)
    assert not stats.is_error  # the issued token is accepted by the server
    err = capsys.readouterr().err
    assert '"UserPromptSubmit"' in err and "sage memory hook stop" in err

    assert main(["mcp", "connect", "print", "--user", "ada"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["mcpServers"]["sage"]["url"] == mcp_url
    assert config["mcpServers"]["sage"]["headers"]["Authorization"].startswith("Bearer ")
