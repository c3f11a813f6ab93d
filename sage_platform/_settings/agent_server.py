"""The streaming agent server (``sage serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from sage_platform._settings.aliases import also


class AgentServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Agent server address; loopback unless asked otherwise.")
    port: int = Field(8080, gt=0, lt=65536, description="Agent server port.")
    workspace: Path | None = Field(
        None,
        description="Agent working folder; defaults to data_dir/workspace.",
        validation_alias=also("workspace", "SAGE_WORKSPACE_PATH"),
    )
    logs_dir: Path | None = Field(
        None,
        description="Server logs; defaults to data_dir/logs.",
        validation_alias=also("logs_dir", "SAGE_LOGS_DIR_PATH"),
    )
    max_model_len: int = Field(
        8192,
        gt=256,
        description="Context window the prompt must fit, in tokens.",
        validation_alias=also("max_model_len", "SAGE_DEFAULT_LLM_MAX_MODEL_LEN"),
    )
    force_summary: bool = Field(False, description="Always summarise older history (a request may ask it too).")
    context_history_ratio: float = Field(0.2, gt=0, lt=1, description="Share of the window for older history.")
    context_active_ratio: float = Field(0.3, gt=0, lt=1, description="Share for the recent turns.")
    context_max_new_message_ratio: float = Field(0.5, gt=0, lt=1, description="Share for the new message.")
    context_recent_turns: int = Field(3, ge=0, description="Turns always kept whole, newest first.")
    memory_type: Literal["session", "user"] = Field("session", description="Recall per session or per user.")
    db_type: Literal["postgres", "file", "memory", "mysql"] = Field(
        "postgres", description="Where sessions are stored (mysql: with the mysql_* settings)."
    )
    db_path: Path | None = Field(None, description="db_type file: the folder of the sessions file; default data_dir.")
    mysql_host: str = Field("127.0.0.1", description="db_type mysql: server address.")
    mysql_port: int = Field(3306, gt=0, lt=65536, description="db_type mysql: server port.")
    mysql_user: str = Field("root", description="db_type mysql: user.")
    mysql_password: SecretStr | None = Field(None, description="db_type mysql: password.")
    mysql_database: str = Field("sage", description="db_type mysql: database.")
    session_database_url: str | None = Field(
        None, description="Any SQLAlchemy URL (e.g. mysql+pymysql://) for sessions instead of the platform database."
    )
    mcp_config_path: Path | None = Field(
        None, description="MCP servers preloaded at start (mcp_setting.json); read only when set, never from the cwd."
    )
    preset_running_config_path: Path | None = Field(
        None, description="agent_setting.json: system_context, workflows and sub-agents; read only when set."
    )
    skills_dir: Path | None = Field(None, description="Skills, one folder with a SKILL.md each (available_skills).")
    reasoning_models: str = Field(
        "deepseek-reasoner,*-r1*,o1*,o3*,o4*,qwq*,*thinking*,gpt-5*",
        description="Models that reason on their own (patterns); deep_thinking adds a thinking step for others.",
    )
    mcp_stdio_commands: str = Field(
        "", description="Commands a stdio MCP server registered over the API may run (comma-separated); empty: none."
    )
    no_auth: bool = Field(False, description="Serve /api without bearer keys even when keys exist (loopback only).")
    api_keys: SecretStr | None = Field(
        None, description="Bearer keys for /api: user=KEY,user=KEY (a bare KEY: user default)."
    )
    admin_keys: SecretStr | None = Field(None, description="Keys with the admin role, comma-separated (both servers).")
    api_key: SecretStr | None = Field(
        None, description="The key `sage search` and `sage chat` send to an agent server whose API needs keys."
    )
    key_cache_seconds: float = Field(
        5.0, ge=0, description="How long a key check is cached: a revoked key stops working within it."
    )
    allowed_hosts: str = Field("", description="Extra Host names served without keys (besides loopback and the bind).")
    allowed_origins: str = Field("", description="Extra browser origins allowed to POST/PUT/DELETE (comma-separated).")
    enable_trace: bool = Field(False, description="Export OpenTelemetry traces (OTLP over HTTP).")
    trace_jaeger_url: str | None = Field(None, description="OTLP endpoint, e.g. http://127.0.0.1:4318.")
    trace_ui_url: str | None = Field(
        None, description="Trace viewer (Jaeger UI, e.g. http://127.0.0.1:16686): the console links runs to it."
    )
    max_request_bytes: int = Field(1_000_000, gt=0, description="Larger request bodies get 413.")
    agent_max_steps: int = Field(8, gt=0, description="Model calls per agent run (per plan step, per sub-agent).")
    agent_max_loop_count: int = Field(50, gt=0, description="The most a request's max_loop_count may ask for.")
    max_active_streams: int = Field(
        256, gt=0, description="Runs at once; more get 503 with Retry-After instead of queueing into timeouts."
    )
    tool_timeout: float = Field(30.0, gt=0, description="Seconds a tool call may take.")
    tool_result_max_chars: int = Field(50_000, gt=0, description="Longer tool results are cut, with a note.")
    run_timeout_s: float = Field(600.0, gt=0, description="Deadline of one agent run, from start to stream_end.")
    max_streams_per_user: int = Field(
        16, gt=0, description="Runs at once for one user, across every server process; more get 429."
    )
    max_queue_delay_ms: float = Field(
        50.0,
        gt=0,
        description="A server whose work waits this long (event loop lag, or runs' time to start) refuses new runs "
        "at once (503, Retry-After).",
    )
    max_streams_total: int = Field(
        0, ge=0, description="Runs at once across every server process on the database (503 past it); 0: no such cap."
    )
    workers: int = Field(
        1, ge=1, le=64, description="Server processes on one port; they share sessions through the database."
    )
    stream_lease_seconds: float = Field(
        15.0, ge=1, description="A running session's lease: a server that dies holding it frees it after this."
    )
