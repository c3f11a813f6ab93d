"""``sage serve`` flags, named as the seed server named them; each also reads ``SAGE_<NAME>``.

A type of ``None`` marks a switch (``store_true``).
"""

from __future__ import annotations

SERVER_FLAGS: dict[str, tuple[str, type | None, str]] = {
    "--host": ("host", str, "address to bind (SAGE_HOST, default 127.0.0.1)"),
    "--port": ("port", int, "port (SAGE_PORT, default 8080)"),
    "--workspace": ("workspace", str, "agent working folder (SAGE_WORKSPACE, default DATA_DIR/workspace)"),
    "--logs-dir": ("logs_dir", str, "log folder (SAGE_LOGS_DIR, default DATA_DIR/logs)"),
    "--default_llm_model_name": ("default_llm_model_name", str, "model name (SAGE_DEFAULT_LLM_MODEL_NAME)"),
    "--default_llm_api_base_url": ("default_llm_api_base_url", str, "OpenAI-compatible base URL"),
    "--default_llm_api_key": ("default_llm_api_key", str, "API key; prefer SAGE_DEFAULT_LLM_API_KEY"),
    "--default_llm_max_tokens": ("default_llm_max_tokens", int, "reply length limit (default 512)"),
    "--default_llm_temperature": ("default_llm_temperature", float, "sampling temperature (default 0)"),
    "--default_llm_top_p": ("default_llm_top_p", float, "nucleus sampling (default 1)"),
    "--default_llm_timeout": ("default_llm_timeout", float, "seconds per LLM call (default 60)"),
    "--max_model_len": ("max_model_len", int, "context window in tokens (default 8192)"),
    "--context_history_ratio": ("context_history_ratio", float, "window share for older history (0.2)"),
    "--context_active_ratio": ("context_active_ratio", float, "window share for recent turns (0.3)"),
    "--context_max_new_message_ratio": ("context_max_new_message_ratio", float, "share for the new message (0.5)"),
    "--context_recent_turns": ("context_recent_turns", int, "turns always kept whole (default 3)"),
    "--memory_type": ("memory_type", str, "session | user (default session)"),
    "--db_type": ("db_type", str, "postgres | file | memory (default postgres)"),
    "--preset_mcp_config": ("mcp_config_path", str, "MCP servers to load at start (SAGE_MCP_CONFIG_PATH; unset: none)"),
    "--max_request_bytes": ("max_request_bytes", int, "larger bodies get 413 (default 1000000)"),
    "--agent_max_steps": ("agent_max_steps", int, "model calls per run (default 8)"),
    "--max_active_streams": ("max_active_streams", int, "runs at once; more get 503 + Retry-After (256)"),
    "--tool_timeout": ("tool_timeout", float, "seconds per tool call (default 30)"),
    "--trace_jaeger_url": ("trace_jaeger_url", str, "OTLP/HTTP endpoint for traces, e.g. http://127.0.0.1:4318"),
    "--enable_trace": ("enable_trace", None, "export traces (to --trace_jaeger_url or 127.0.0.1:4318)"),
    "--no_auth": ("no_auth", None, "serve /api without keys even if SAGE_API_KEYS is set (loopback only)"),
}
