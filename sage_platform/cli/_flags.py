"""CLI flags derived from ``Settings``: one declaration gives the flag's name, type, choices and help.

Flags are kebab-case (``--chunk-size``); the original server's snake_case spellings
(``--chunk_size``, ``--preset_mcp_config``) are accepted as hidden aliases. A flag wins over
``SAGE_*``, which wins over the default.

Usage::

    add_settings(parser, STORAGE + CHUNKING)
    settings = settings_from(parser.parse_args())
"""

from __future__ import annotations

import argparse
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from sage_platform.config import Settings

STORAGE = ("data_dir", "database_url")
CORPUS = ("corpus_dir", "eval_set", "inbox_dir")
CHUNKING = ("chunk_size", "chunk_overlap")
EMBEDDING = ("embedding_model", "embedding_base_url", "embedding_api_key", "embedding_batch_size", "embedding_threads")
ELASTICSEARCH = ("elasticsearch_url", "elasticsearch_api_key", "elasticsearch_username", "elasticsearch_password")
RETRIEVAL = ("retriever", "retrieval_k", "hnsw_ef_search", "hybrid_fusion", "hybrid_dense_weight")
LLM = (
    "default_llm_model_name",
    "default_llm_api_base_url",
    "default_llm_api_key",
    "default_llm_max_tokens",
    "default_llm_temperature",
    "default_llm_top_p",
    "default_llm_presence_penalty",
    "default_llm_timeout",
    "default_llm_max_retries",
)
AGENT_SERVER = (
    "host",
    "port",
    "workspace",
    "logs_dir",
    "max_model_len",
    "force_summary",
    "context_history_ratio",
    "context_active_ratio",
    "context_max_new_message_ratio",
    "context_recent_turns",
    "memory_type",
    "db_type",
    "db_path",
    "mysql_host",
    "mysql_port",
    "mysql_user",
    "mysql_password",
    "mysql_database",
    "session_database_url",
    "mcp_config_path",
    "preset_running_config_path",
    "skills_dir",
    "reasoning_models",
    "workspace_max_file_bytes",
    "workspace_retention_days",
    "workspace_s3_endpoint",
    "workspace_s3_access_key",
    "workspace_s3_secret_key",
    "workspace_s3_bucket",
    "workspace_s3_secure",
    "max_request_bytes",
    "agent_max_steps",
    "agent_max_loop_count",
    "max_active_streams",
    "max_streams_per_user",
    "max_queue_delay_ms",
    "max_streams_total",
    "workers",
    "stream_lease_seconds",
    "tool_timeout",
    "run_timeout_s",
    "trace_jaeger_url",
    "trace_ui_url",
    "enable_trace",
    "no_auth",
)
BACKUP = ("backup_dir", "s3_bucket", "s3_prefix", "s3_endpoint_url", "s3_region")

# The original server's own spellings, kept working (hidden from --help).
ORIGINAL_SPELLINGS: Mapping[str, tuple[str, ...]] = {
    "mcp_config_path": ("--preset_mcp_config",),
    "preset_running_config_path": ("--preset_running_config",),
    "max_model_len": ("--default_llm_max_model_len",),
    "elasticsearch_url": ("--es_url",),
    "elasticsearch_api_key": ("--es_api_key",),
    "elasticsearch_username": ("--es_username",),
    "elasticsearch_password": ("--es_password",),
    **{
        f"workspace_s3_{ours}": (f"--s3_{theirs}", f"--minio_{theirs}")
        for ours, theirs in (
            ("endpoint", "endpoint"),
            ("access_key", "access_key"),
            ("secret_key", "secret_key"),
            ("bucket", "bucket_name"),
            ("secure", "secure"),
        )
    },  # fmt: skip
}


class Commands(Protocol):
    """What ``add_subparsers()`` returns, as the command modules use it."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_settings(
    parser: argparse.ArgumentParser,
    names: Sequence[str],
    *,
    title: str = "settings (flag > SAGE_* environment > default)",
    renamed: Mapping[str, str] | None = None,
) -> None:
    """One flag per setting in ``names``; ``renamed`` gives a setting a shorter flag (``mcp_port`` → ``--port``)."""
    group = parser.add_argument_group(title)
    for name in names:
        field = Settings.model_fields[name]
        flag = (renamed or {}).get(name, flag_of(name))
        options = _value_options(field.annotation)
        extra = field.json_schema_extra
        choices = extra.get("choices") if isinstance(extra, dict) else None
        if isinstance(choices, list):
            options["choices"] = choices
        default = "unset" if field.default is None else field.default
        secret = _is_secret(field.annotation)
        note = " — prefer the environment: other users can read a command line" if secret else ""
        help_text = f"{field.description} (SAGE_{name.upper()}; default {default}){note}".replace("%", "%%")
        group.add_argument(flag, dest=name, default=None, help=help_text, **options)
        hidden = {flag_of(name), "--" + name, *ORIGINAL_SPELLINGS.get(name, ())} - {flag}
        if options.get("action") == "store_const":  # the original's switches also take a value: --enable_trace true
            options = {"nargs": "?", "const": True, "type": _switch_value, "metavar": "BOOL"}
        for alias in sorted(hidden):
            group.add_argument(alias, dest=name, default=None, help=argparse.SUPPRESS, **options)


def _value_options(annotation: Any) -> dict[str, Any]:
    """argparse keywords for a settings type: switches for booleans, choices for literals."""
    kind = next(kind for kind in _union_members(annotation) if kind is not type(None))
    if kind is bool:
        return {"action": "store_const", "const": True}
    if typing.get_origin(kind) is typing.Literal:
        return {"choices": list(typing.get_args(kind))}
    return {"type": kind if kind in (int, float, Path) else str}


def _switch_value(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _is_secret(annotation: Any) -> bool:
    return SecretStr in _union_members(annotation)


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags on this command line."""
    return {name: getattr(args, name) for name in Settings.model_fields if getattr(args, name, None) is not None}


def settings_from(args: argparse.Namespace, *, for_children: bool = False) -> Settings:
    """Settings with the given flags on top; ``for_children`` also hands them to child processes.

    Dagster's webserver, daemon and run workers are separate processes that read ``SAGE_*``
    from their environment, so for commands that start them the flags are exported too.
    """
    given = given_settings(args)
    settings = Settings(**given)
    if for_children:
        for name, value in given.items():
            os.environ[f"SAGE_{name.upper()}"] = str(
                value.get_secret_value() if isinstance(value, SecretStr) else value
            )
        os.environ["SAGE_DATA_DIR"] = str(settings.data_dir.resolve())  # children may run elsewhere
    return settings
