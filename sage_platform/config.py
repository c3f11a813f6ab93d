"""Settings: CLI flags, then ``SAGE_*`` environment variables, then defaults.

Usage::

    settings = Settings()                      # environment and defaults
    settings = Settings(chunk_size=128)        # a flag wins over SAGE_CHUNK_SIZE
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sage_platform._settings.agent_server import AgentServerSettings
from sage_platform._settings.memory_server import MemoryServerSettings
from sage_platform._settings.operations import OperationsSettings
from sage_platform.filters import RETRIEVERS
from sage_platform.package_files import SAMPLE_CORPUS_DIR, SAMPLE_EVAL_SET

LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Settings(AgentServerSettings, MemoryServerSettings, OperationsSettings, BaseSettings):
    """Every knob of the platform. Environment variables carry the ``SAGE_`` prefix. The servers' and
    operations' settings are declared beside their parts (``sage_platform._settings``)."""

    model_config = SettingsConfigDict(env_prefix="SAGE_", extra="ignore", validate_default=True, populate_by_name=True)

    data_dir: Path = Field(Path(".sage"), description="Embedded database, reports and caches.")
    database_url: str | None = Field(None, description="PostgreSQL URL; unset means the embedded server.")
    database_read_url: str | None = Field(
        None,
        description="A read replica (streaming-replication standby) that searches read; writes and everything "
        "else use SAGE_DATABASE_URL. Searches see what the replica has replayed.",
    )
    dagster_database_url: str | None = Field(
        None, description="Dagster's own storage; defaults to the platform's server."
    )

    corpus_dir: Path = Field(SAMPLE_CORPUS_DIR, description="Folder read recursively by raw_documents.")
    inbox_dir: Path | None = Field(
        None, description="Watched by inbox_sensor; new files are staged under data_dir/inbox and ingested."
    )
    eval_set: Path = Field(SAMPLE_EVAL_SET, description="Golden questions, JSONL.")
    max_document_bytes: int = Field(20_000_000, gt=0, description="Larger files are rejected.")
    max_delete_fraction: float = Field(
        0.5, gt=0, le=1, description="A run that would delete more of the documents stops (1 forces it)."
    )
    parser_timeout_s: float = Field(30.0, gt=0, description="Seconds one file may take to parse.")
    parser_memory_mb: int = Field(1024, ge=128, description="Address space of the parser worker process.")
    max_pdf_pages: int = Field(1000, gt=0, description="Longer PDFs are rejected.")
    max_extracted_chars: int = Field(20_000_000, gt=0, description="Text extracted from one file, at most.")

    chunk_size: int = Field(200, gt=8, description="Chunk length in embedder tokens (characters for APIs).")
    chunk_overlap: int = Field(32, ge=0, description="Tokens repeated from the previous chunk.")

    embedding_model: str = Field(LOCAL_EMBEDDING_MODEL, description="Local model name/path, or API model.")
    embedding_base_url: str | None = Field(None, description="OpenAI-compatible embeddings endpoint.")
    embedding_api_key: SecretStr | None = Field(None, description="Key of the embeddings endpoint.")
    embedding_batch_size: int = Field(10, gt=0, description="Texts per forward pass or API request.")
    embedding_threads: int = Field(
        1,
        gt=0,
        description="Local model: forward passes at once per process (more can pay for parallel pipeline steps).",
    )
    embedding_commit_every: int = Field(256, gt=0, description="Texts embedded per committed transaction.")
    embedding_shards: int = Field(
        0,
        ge=0,
        description="Steps the embedding fans out to (disjoint shards of the missing texts). 0: one per core when "
        "steps run in their own processes (SAGE_DAGSTER_EXECUTOR other than in_process), fewer for a small backlog; "
        "one in process.",
    )

    retrieval_k: int = Field(5, gt=0, description="Chunks given to the answerer.")
    retriever: str = Field(
        "hybrid",
        description="Default retriever of answers and searches.",
        json_schema_extra={"choices": list(RETRIEVERS)},
    )
    hnsw_ef_search: int = Field(100, gt=0, description="HNSW search breadth; larger is slower and more exact.")
    hybrid_dense_depth: int = Field(50, gt=0, description="Dense candidates fused by hybrid search.")
    hybrid_sparse_depth: int = Field(50, gt=0, description="Full-text candidates fused by hybrid search.")
    hybrid_fusion: Literal["convex", "rrf"] = Field(
        "convex", description="convex (weighted similarity + normalised BM25) or rrf (reciprocal rank fusion)."
    )
    hybrid_dense_weight: float = Field(0.5, ge=0, le=1, description="Weight of cosine similarity in convex fusion.")
    sparse_max_candidates: int = Field(
        200, gt=0, description="Full-text matches scored by BM25 per query, rarest words first; bounds common words."
    )
    text_search_language: str = Field("english", description="Default full-text configuration (per document).")
    index_check_queries: int = Field(200, gt=0, description="Sample queries of a rebuilt index's recall check.")
    index_min_recall: float = Field(0.95, gt=0, le=1, description="recall@10 a rebuilt index must reach.")
    binary_index_above_rows: int = Field(
        1_000_000,
        ge=0,
        description="An index version with more chunks gets binary-quantized HNSW, re-ranked by the full vectors "
        "(smaller, faster to build, higher recall at a million chunks: docs/benchmarks.md).",
    )

    eval_regression_margin: float = Field(2.0, ge=0, description="Points (0–100) a headline metric may drop.")
    eval_regression_severity: Literal["WARN", "ERROR"] = Field("ERROR", description="How a regression fails.")

    elasticsearch_url: str | None = Field(None, description="Elasticsearch to index into and search too; unset: none.")
    elasticsearch_api_key: SecretStr | None = Field(None, description="Elasticsearch API key.")
    elasticsearch_username: str | None = Field(None, description="Elasticsearch user (basic auth).")
    elasticsearch_password: SecretStr | None = Field(None, description="Elasticsearch password (basic auth).")
    elasticsearch_shards: int = Field(
        1, ge=1, description="Primary shards of each index build; about one per 30 GB of index (docs/operators.md)."
    )
    elasticsearch_replicas: int = Field(
        0, ge=0, description="Replicas of each index, added once it is loaded; 1+ on a cluster of 2+ nodes."
    )

    default_llm_api_key: SecretStr | None = Field(None, description="Key of the OpenAI-compatible LLM endpoint.")
    default_llm_api_base_url: str | None = Field(None, description="OpenAI-compatible base URL (…/v1).")
    default_llm_model_name: str | None = Field(None, description="Chat model; unset: extractive answers only.")
    default_llm_max_tokens: int = Field(512, gt=0, description="Reply length limit in tokens.")
    default_llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    default_llm_top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling.")
    default_llm_presence_penalty: float = Field(
        0.0, ge=-2.0, le=2.0, description="Presence penalty sent to the model (when not 0)."
    )
    llm_allowed_base_urls: str = Field(
        "", description="Base URLs a request's llm_model_config may switch to (comma-separated); admins: any."
    )
    default_llm_timeout: float = Field(60.0, gt=0, description="Seconds an LLM call may take.")
    default_llm_max_retries: int = Field(2, ge=0, description="Retries of 429/5xx LLM answers, with backoff.")

    dagster_executor: Literal["in_process", "multiprocess", "k8s", "docker"] = Field(
        "in_process",
        description="How a run's steps execute: one process (the model loads once), parallel processes, or a "
        "Kubernetes Job / Docker container per step (deploy/).",
    )
    max_concurrent_runs: int = Field(4, gt=0, description="Runs the Dagster daemon launches at once.")
    pool_limits: str = Field(
        "llm=4,embedding=auto,database=1",
        description="Concurrency pool limits: calls to rate-limited APIs, heavy builds. embedding=auto: one step "
        "at a time in process, one per core when steps run in processes of their own.",
    )
    dagster_host: str = Field("127.0.0.1", description="Dagster UI address (sage up).")
    dagster_port: int = Field(3000, gt=0, lt=65536, description="Dagster UI port (sage up).")
    warm_worker: bool = Field(
        True,
        description="sage up starts a worker that keeps the graph, the checks and the model loaded: sage "
        "materialize then runs in it, in seconds (false: every run loads them anew).",
    )

    @field_validator("text_search_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        from sage_platform.text_search import config_for_language

        return config_for_language(value)

    @field_validator("retriever")
    @classmethod
    def _known_retriever(cls, value: str) -> str:
        from sage_platform.filters import check_retriever_name

        return check_retriever_name(value)

    @field_validator(
        "database_url",
        "dagster_database_url",
        "embedding_base_url",
        "default_llm_api_base_url",
        "elasticsearch_url",
        "trace_jaeger_url",
        "session_database_url",
        "alert_webhook_url",
        "workspace_s3_endpoint",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _context_ratios_fit(self) -> Settings:
        total = self.context_history_ratio + self.context_active_ratio + self.context_max_new_message_ratio
        if total > 1.0 + 1e-9:
            raise ValueError(f"context ratios add up to {total:.2f}; they must not exceed 1")
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size // 2:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be below half of chunk_size ({self.chunk_size})"
            )
        return self

    @property
    def reasoning_model_list(self) -> list[str]:
        return [p.lower() for p in _split(self.reasoning_models)]

    @property
    def mcp_stdio_command_list(self) -> list[str]:
        return _split(self.mcp_stdio_commands)

    @property
    def llm_allowed_base_url_list(self) -> list[str]:
        return _split(self.llm_allowed_base_urls)

    @property
    def allowed_host_list(self) -> list[str]:
        return _split(self.allowed_hosts)

    @property
    def allowed_origin_list(self) -> list[str]:
        return _split(self.allowed_origins)

    @property
    def database_fingerprint(self) -> str:
        """Names the platform database without revealing its URL: processes compare it to know they share one.

        Shown on the open ``/health``, so the password is masked before hashing: a hash of it would
        let anyone who can reach the server guess it offline."""
        from sage_platform.hashing import text_hash

        where = _mask_password(self.database_url) if self.database_url else f"embedded:{self.pgdata_dir}"
        return text_hash(where)[:16]

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir.resolve() / "pg"

    @property
    def inbox_staging_dir(self) -> Path:
        """Where inbox files are staged: ingested beside the corpus as ``inbox/<path>``, never written into it."""
        return self.data_dir.resolve() / "inbox"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir.resolve() / "reports"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir.resolve() / "dagster"

    @property
    def workspace_dir(self) -> Path:
        return (self.workspace or self.data_dir / "workspace").resolve()

    @property
    def server_logs_dir(self) -> Path:
        return (self.logs_dir or self.data_dir / "logs").resolve()

    @property
    def workspace_s3_url(self) -> str | None:
        """workspace_s3_endpoint as a URL (the original gives host:port and a secure switch)."""
        endpoint = self.workspace_s3_endpoint
        if endpoint is None or "://" in endpoint:
            return endpoint
        return f"{'https' if self.workspace_s3_secure else 'http'}://{endpoint}"

    @property
    def memory_server_url(self) -> str:
        return self.mcp_url or f"http://{self.mcp_host}:{self.mcp_port}/mcp"

    @property
    def tracing_enabled(self) -> bool:
        return self.enable_trace or self.trace_jaeger_url is not None

    @property
    def elasticsearch_configured(self) -> bool:
        return self.elasticsearch_url is not None

    @property
    def llm_configured(self) -> bool:
        return bool(self.default_llm_model_name and (self.default_llm_api_base_url or self.default_llm_api_key))

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to print or store: secrets are masked, paths are strings."""
        out: dict[str, Any] = {}
        for key, value in self.model_dump().items():
            if isinstance(value, SecretStr) or (value is not None and "api_key" in key):
                out[key] = "***" if value else None
            elif key.endswith("url") and isinstance(value, str) and "@" in value:
                out[key] = _mask_password(value)
            else:
                out[key] = str(value) if isinstance(value, Path) else value
        return out


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _mask_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
