"""Workspace files: upload → the agent's tools → download, per user and session, local and on real S3."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.pdf import make_pdf
from tests.s3_server import S3Endpoint, s3_endpoint, unavailable_reason
from tests.server.conftest import AgentClient

KEYS = {"api_keys": "alice=key-alice,bob=key-bob"}


def upload(client: AgentClient, session: str, name: str, data: bytes) -> requests.Response:
    return requests.post(f"{client.url}/api/files", files={"file": (name, data)}, data={"session_id": session},
                         headers=client.headers, timeout=30)  # fmt: skip


def users(server: AgentClient) -> tuple[AgentClient, AgentClient]:
    return (replace(server, headers={"Authorization": "Bearer key-alice"}),
            replace(server, headers={"Authorization": "Bearer key-bob"}))  # fmt: skip


def results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["content"] for m in messages if m["type"] == "tool_call_result"]


def round_trip(alice: AgentClient, bob: AgentClient) -> None:
    """Upload, the agent's list/read/write, download, delete; bob sees none of it."""
    first = upload(alice, "s1", "résumé notes.md", b"# Notes\nversion one\n")
    assert first.status_code == 201, first.text
    record = first.json()
    assert (record["name"], record["version"], record["content_type"], record["size"]) == (
        "résumé notes.md", 1, "text/markdown", 20)  # fmt: skip
    pdf = upload(alice, "s1", "report.txt", make_pdf("Quarterly revenue grew by nine percent.")).json()
    assert pdf["content_type"] == "application/pdf"  # sniffed from the bytes, not the name

    write = json.dumps({"name": "résumé notes.md", "content": "# Notes\nversion two\n"})
    [written] = results(alice.stream(f"[[tool:write_file {write}]] update it", session_id="s1"))
    [listed] = results(alice.stream("[[tool:list_files]] what is there?", session_id="s1"))
    assert written["ok"] and json.loads(written["result"])["version"] == 2  # a new version, never an overwrite
    assert sorted((f["name"], f["version"]) for f in json.loads(listed["result"])) == [
        ("report.txt", 1), ("résumé notes.md", 1), ("résumé notes.md", 2)]  # fmt: skip
    reads = ('[[tool:read_file {"name": "résumé notes.md"}]] '
             f'[[tool:read_file {{"file_id": "{pdf["file_id"]}", "max_chars": 20}}]] read')  # fmt: skip
    text, pdf_text = results(alice.stream(reads, session_id="s1"))
    assert text["result"] == "# Notes\nversion two\n"
    assert pdf_text["result"].startswith("Quarterly revenue g") and "[cut at 20 of" in pdf_text["result"]

    download = alice.get(f"/api/files/{record['file_id']}")
    assert download.content == b"# Notes\nversion one\n"  # version one is still there
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"r_sum_ notes.md\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20notes.md")  # fmt: skip
    assert download.headers["x-content-type-options"] == "nosniff"
    assert [f["file_id"] for f in alice.get("/api/files", params={"session_id": "s1"}).json()].count(
        record["file_id"]) == 1  # fmt: skip

    assert bob.get(f"/api/files/{record['file_id']}").status_code == 404
    assert bob.delete(f"/api/files/{record['file_id']}").status_code == 404
    assert bob.get("/api/files").json() == []
    assert upload(bob, "s1", "x.txt", b"mine").status_code == 404  # alice's session
    bob_reads = results(bob.stream(f'[[tool:read_file {{"file_id": "{record["file_id"]}"}}]] read', session_id="b1"))
    assert not bob_reads[0]["ok"] and "no file" in bob_reads[0]["result"]

    assert alice.delete(f"/api/files/{record['file_id']}").json()["version"] == 1
    assert alice.get(f"/api/files/{record['file_id']}").status_code == 404


def test_files_round_trip_on_the_local_store(start_server: Callable[..., AgentClient], tmp_path: Path) -> None:
    server = start_server(**KEYS, data_dir=tmp_path / "data")
    alice, bob = users(server)
    round_trip(alice, bob)
    stored = sorted(p.name for p in (tmp_path / "data" / "workspace_files").rglob("*") if p.is_file())
    assert len(stored) == 2 and all(len(name) == 32 for name in stored)  # ids, never names; the deleted one gone


def test_names_are_never_paths_and_sizes_are_limited(start_server: Callable[..., AgentClient], tmp_path: Path) -> None:
    server = start_server(**KEYS, data_dir=tmp_path / "data", workspace_max_file_bytes=1000)
    alice, _ = users(server)
    (tmp_path / "secret.txt").write_text("do not read")
    sneaky = upload(alice, "s1", "../../secret.txt", b"overwrite?")
    assert sneaky.status_code == 201 and sneaky.json()["name"] == "secret.txt"
    assert (tmp_path / "secret.txt").read_text() == "do not read"
    for path in ("/api/files/..%2F..%2Fsecret.txt", "/api/files/../../secret.txt", f"/api/files/{'0' * 32}"):
        assert alice.get(path).status_code == 404, path
    traversal = results(alice.stream('[[tool:read_file {"file_id": "../../secret.txt"}]] read', session_id="s1"))
    assert not traversal[0]["ok"] and "do not read" not in traversal[0]["result"]
    too_big = upload(alice, "s1", "big.bin", b"x" * 1001)
    assert too_big.status_code == 413 and "SAGE_WORKSPACE_MAX_FILE_BYTES" in too_big.json()["detail"]
    huge = upload(alice, "s1", "huge.bin", b"x" * 200_000)  # refused by the body limit before it is read
    assert huge.status_code == 413
    assert [f["name"] for f in alice.get("/api/files").json()] == ["secret.txt"]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[S3Endpoint]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with s3_endpoint() as found:
        yield found


def test_files_round_trip_on_s3(start_server: Callable[..., AgentClient], endpoint: S3Endpoint, tmp_path: Path) -> None:
    from pydantic import SecretStr

    from sage_platform.ops.storage import make_s3_client

    bucket = f"files-{uuid.uuid4().hex[:8]}"
    client = make_s3_client(endpoint.url, SecretStr(endpoint.access_key), SecretStr(endpoint.secret_key),
                            region="us-east-1", addressing_style="path")  # fmt: skip
    client.create_bucket(Bucket=bucket)
    server = start_server(**KEYS, data_dir=tmp_path / "data", workspace_s3_endpoint=endpoint.url,
                          workspace_s3_bucket=bucket, workspace_s3_access_key=endpoint.access_key,
                          workspace_s3_secret_key=endpoint.secret_key)  # fmt: skip
    alice, bob = users(server)
    round_trip(alice, bob)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert len(keys) == 2 and all(k.startswith("workspace/") and len(k) == len("workspace/") + 32 for k in keys)
    assert not (tmp_path / "data" / "workspace_files").exists()  # nothing kept locally
    assert server.get("/health").json()["workspace_storage"] == "ok"


def test_a_sessions_files_are_a_knowledge_base(start_server: Callable[..., AgentClient], tmp_path: Path) -> None:
    from tests.conftest import pubmedqa_items

    server = start_server(**KEYS, data_dir=tmp_path / "data")
    alice, _ = users(server)
    items = pubmedqa_items(6)
    for pmid, item in items:
        assert upload(alice, "kb", f"{pmid}.txt", "\n\n".join(item["CONTEXTS"]).encode()).status_code == 201
    assert upload(alice, "kb", "logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64)).status_code == 201  # skipped, no crash
    pmid, item = items[3]
    search = json.dumps({"query": item["QUESTION"], "k": 3})
    [found] = results(alice.stream(f"[[tool:search_files {search}]] find it", session_id="kb"))
    hits = json.loads(found["result"])["hits"]
    assert found["ok"] and hits[0]["doc_id"] == f"{pmid}.txt (v1)"  # the abstract the question was written for
    [through_kb] = results(alice.stream(f"[[tool:knowledge_search {search}]] find it", session_id="kb",
                                        knowledge_bases=["files"]))  # fmt: skip
    assert json.loads(through_kb["result"])["hits"][0]["doc_id"] == f"{pmid}.txt (v1)"
    [elsewhere] = results(alice.stream(f"[[tool:search_files {search}]] find it", session_id="other"))
    assert json.loads(elsewhere["result"])["hits"] == []  # another session's knowledge base is its own
    with server.state.platform.db.pool.connection() as conn:
        errors = conn.execute("SELECT name, index_error FROM workspace_files WHERE index_error IS NOT NULL").fetchall()
    assert errors == [("logo.png", "ValueError: image/png is not text")]
