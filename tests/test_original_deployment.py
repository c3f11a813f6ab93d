"""The original server's deployment guide: its flags and variables work here, or fail loudly.

The flags come from ../shared/ORIGINALS.md's table, so a flag added there and not here fails. The
original's ``docker run`` command line starts ``sage serve`` with MySQL and MinIO absent, and says so.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sage_platform.agent.session_store import mysql_url
from sage_platform.cli import build_parser
from sage_platform.cli._flags import settings_from
from sage_platform.config import Settings
from sage_platform.server.preflight import StartupError, check_environment
from tests._children import Child

ORIGINALS = Path(__file__).resolve().parents[2] / "shared" / "ORIGINALS.md"
SWITCHES = {"--force_summary", "--enable_trace", "--no_auth", "--s3_secure"}


def original_flags() -> list[str]:
    """Every flag of the original server's table, ``--mysql_host/_port`` spelled out."""
    section = ORIGINALS.read_text().split("## A.")[1].split("**Routes.**")[0]
    flags = []
    for cell in re.findall(r"^\| (`--[^|]+) \|", section, flags=re.MULTILINE):
        first, *rest = cell.strip("` ").split("/")
        base = first.split("_")[0]  # --mysql_host/_port: the suffixes follow --mysql
        flags += [first, *(base + suffix for suffix in rest)]
    return flags


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_flag_of_the_deployment_guide_is_accepted() -> None:
    flags = original_flags()
    assert len(flags) >= 40 and "--mysql_database" in flags and "--s3_bucket_name" in flags
    parser = build_parser()
    refused = []
    for flag in flags:
        forms = [[], ["true"]] if flag in SWITCHES else [[value] for value in ("1", "0.5", "session", "mysql", "x")]
        accepted = 0
        for form in forms:
            try:
                parser.parse_args(["serve", flag, *form])
                accepted += 1
            except SystemExit:
                pass  # a value of the wrong type for this flag: the next form is tried
        if accepted < (2 if flag in SWITCHES else 1):
            refused.append(flag)
    assert refused == []


def test_every_variable_of_the_deployment_guide_is_a_setting_or_refused() -> None:
    from sage_platform.server.preflight import UNSUPPORTED, setting_variables

    section = ORIGINALS.read_text().split("## A.")[1].split("**Routes.**")[0]
    names = []
    for cell in re.findall(r"^\| [^|]+ \| `([A-Z_/0-9]+)` \|", section, flags=re.MULTILINE):
        first, *rest = cell.split("/")
        base = "_".join(first.split("_")[:2]) + "_"  # SAGE_MYSQL_HOST/PORT: the rest follow SAGE_MYSQL_
        names += [first, *(base + suffix for suffix in rest)]
    assert len(names) >= 40 and "SAGE_MYSQL_DATABASE" in names and "MEMORY_ROOT_PATH" in names
    known = setting_variables()
    assert [n for n in names if n not in known and n not in UNSUPPORTED] == []


def test_original_flags_and_variables_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = {
        "SAGE_WORKSPACE_PATH": "/srv/ws", "SAGE_LOGS_DIR_PATH": "/srv/logs", "SAGE_FORCE_SUMMARY": "true",
        "SAGE_DEFAULT_LLM_MAX_MODEL_LEN": "54000", "SAGE_DB_TYPE": "mysql", "SAGE_MYSQL_HOST": "db.internal",
        "SAGE_MYSQL_PORT": "3307", "SAGE_MYSQL_USER": "sage", "SAGE_MYSQL_PASSWORD": "p@ss/word",
        "SAGE_MYSQL_DATABASE": "agents", "SAGE_MINIO_ENDPOINT": "minio:9000", "SAGE_S3_BUCKET_NAME": "files",
        "SAGE_S3_SECURE": "true", "SAGE_PRESET_RUNNING_CONFIG_PATH": "/srv/agent_setting.json",
        "SAGE_DEFAULT_LLM_PRESENCE_PENALTY": "0.3",
    }  # fmt: skip
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.workspace, settings.logs_dir, settings.force_summary, settings.max_model_len) == (
        Path("/srv/ws"), Path("/srv/logs"), True, 54000)  # fmt: skip
    assert settings.workspace_s3_url == "https://minio:9000" and settings.workspace_s3_bucket == "files"
    assert settings.preset_running_config_path == Path("/srv/agent_setting.json")
    url = mysql_url(settings)
    assert url.render_as_string(hide_password=False) == (
        "mysql+pymysql://sage:p%40ss%2Fword@db.internal:3307/agents?charset=utf8mb4")  # fmt: skip
    assert "p@ss" not in str(url)  # printed, the password is masked

    args = build_parser().parse_args(["serve", "--mysql_host", "flag.internal", "--workspace", "/flag/ws",
                                      "--s3_endpoint", "rustfs:9000", "--minio_bucket_name", "b2",
                                      "--default_llm_max_model_len", "9000", "--enable_trace", "false"])  # fmt: skip
    flagged = settings_from(args)  # a flag wins over the variable
    assert (flagged.mysql_host, flagged.workspace, flagged.max_model_len, flagged.enable_trace) == (
        "flag.internal", Path("/flag/ws"), 9000, False)  # fmt: skip
    assert (flagged.workspace_s3_endpoint, flagged.workspace_s3_bucket) == ("rustfs:9000", "b2")


def test_unsupported_and_unknown_variables_are_never_silent() -> None:
    with pytest.raises(
        StartupError, match="MEMORY_ROOT_PATH is set, but this server does not use it: .*--memory_type user"
    ):
        check_environment({"MEMORY_ROOT_PATH": "/data/memory"})
    warnings = check_environment({"SAGE_CHUNKSIZE": "100", "SAGE_PORT": "1", "SAGE_MINIO_ACCESS_KEY": "k"})
    assert warnings == ["SAGE_CHUNKSIZE is not a setting of this server and is ignored (did you mean SAGE_CHUNK_SIZE?); "
                        "docs/configuration.md"]  # fmt: skip


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, None


def test_the_original_docker_run_line_starts_without_mysql_and_minio_and_says_so(
    env: dict[str, str], tmp_path: Path
) -> None:
    port, mysql_port, minio_port = closed_port(), closed_port(), closed_port()
    (tmp_path / "mcp_setting.json").write_text(json.dumps({"mcpServers": {}}))
    (tmp_path / "agent_setting.json").write_text(json.dumps({"system_context": {"team": "ops"}}))
    command = [
        sys.executable, "-m", "sage_platform.cli", "serve",
        "--port", str(port), "--workspace", str(tmp_path / "agent_workspace"), "--logs-dir", str(tmp_path / "logs"),
        "--force_summary", "--preset_mcp_config", str(tmp_path / "mcp_setting.json"),
        "--preset_running_config", str(tmp_path / "agent_setting.json"),
        "--default_llm_api_base_url", "http://127.0.0.1:9/v1", "--default_llm_model_name", "deepseek-chat",
        "--default_llm_max_tokens", "4096", "--default_llm_temperature", "0.2", "--default_llm_max_model_len", "54000",
        "--default_llm_top_p", "0.9", "--default_llm_presence_penalty", "0.0", "--context_history_ratio", "0.2",
        "--context_active_ratio", "0.3", "--context_max_new_message_ratio", "0.5", "--context_recent_turns", "0",
        "--memory_type", "session", "--db_type", "mysql", "--mysql_host", "127.0.0.1", "--mysql_port", str(mysql_port),
        "--mysql_user", "root", "--mysql_database", "sage", "--s3_endpoint", f"127.0.0.1:{minio_port}",
        "--s3_bucket_name", "sage-files", "--s3_secure", "false", "--enable_trace", "false",
    ]  # fmt: skip
    secrets = {"SAGE_DEFAULT_LLM_API_KEY": "sk-original", "SAGE_MYSQL_PASSWORD": "pw", "SAGE_S3_ACCESS_KEY": "ak",
               "SAGE_S3_SECRET_KEY": "sk"}  # fmt: skip
    with Child(command, env={**os.environ, **env, **secrets}, name="sage serve (original flags)") as server:
        mysql = server.wait_for_line(lambda line: "MySQL at" in line, timeout=120, what="the MySQL warning")
        assert f"MySQL at 127.0.0.1:{mysql_port} (db_type mysql, --mysql_host/--mysql_port) cannot be reached" in mysql
        minio = server.wait_for_line(lambda line: "object storage" in line, timeout=60, what="the storage warning")
        assert (
            f"workspace object storage at http://127.0.0.1:{minio_port} (bucket sage-files) cannot be reached" in minio
        )
        base = f"http://127.0.0.1:{port}"
        server.wait_for(lambda: _get(f"{base}/health")[0] == 200, timeout=180, what="/health")
        health = _get(f"{base}/health")[1]
        assert (health["session_store"], health["workspace_storage"]) == ("unreachable", "unreachable")
        body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "session_id": "s1"}).encode()
        request = urllib.request.Request(f"{base}/api/stream", body, {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "5"
        assert f"MySQL at 127.0.0.1:{mysql_port}" in json.loads(refused.value.read())["detail"]
        assert not any(secret in server.text() for secret in secrets.values())
