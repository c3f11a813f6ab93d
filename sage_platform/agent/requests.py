"""Request bodies of the agent server, validated by FastAPI (a bad body gets 422 naming the field)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ROLES = ("system", "user", "assistant", "tool")


AgentMode = Literal["simple", "fibre", "multi", "team"]
NAME_PATTERN = r"^[A-Za-z0-9_-]+$"


class LLMModelConfig(BaseModel):
    """Per-request overrides of the default model (the original's ``apiKey``/``baseUrl``/``maxTokens``/``topP``
    spellings too)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)

    model: str | None = None
    base_url: str | None = Field(None, validation_alias=AliasChoices("base_url", "baseUrl"))
    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("api_key", "apiKey"))
    max_tokens: int | None = Field(None, gt=0, validation_alias=AliasChoices("max_tokens", "maxTokens"))
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0, validation_alias=AliasChoices("top_p", "topP"))


class ContextBudgetConfig(BaseModel):
    """Per-request shares of the context window (``SAGE_CONTEXT_*`` and ``SAGE_MAX_MODEL_LEN`` otherwise)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    max_model_len: int | None = Field(
        None, gt=256, validation_alias=AliasChoices("max_model_len", "default_llm_max_model_len")
    )
    history_ratio: float | None = Field(
        None, gt=0, lt=1, validation_alias=AliasChoices("history_ratio", "context_history_ratio")
    )
    active_ratio: float | None = Field(
        None, gt=0, lt=1, validation_alias=AliasChoices("active_ratio", "context_active_ratio")
    )
    max_new_message_ratio: float | None = Field(
        None, gt=0, lt=1, validation_alias=AliasChoices("max_new_message_ratio", "context_max_new_message_ratio")
    )
    recent_turns: int | None = Field(None, ge=0, validation_alias=AliasChoices("recent_turns", "context_recent_turns"))


class SubAgentSpec(BaseModel):
    """A team member: defined in ``agent_setting.json``, through ``/api/agents``, or inline in a request."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(..., min_length=1, max_length=48, pattern=NAME_PATTERN)
    description: str = Field("", max_length=2000)
    system_prompt: str = Field(
        "", max_length=20_000, validation_alias=AliasChoices("system_prompt", "systemPrompt", "prompt", "instructions")
    )
    tools: list[str] | None = Field(None, validation_alias=AliasChoices("tools", "available_tools"))
    model: str | None = None
    max_loop_count: int | None = Field(None, gt=0, le=100)


class ChatMessage(BaseModel):
    """One message in OpenAI's shape."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[Any] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # OpenAI content parts: keep the text ones
            return "".join(p.get("text", "") for p in self.content if isinstance(p, dict))
        return self.content or ""

    def to_openai(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class StreamRequest(BaseModel):
    """The body of ``POST /api/stream``, ``/api/chat`` and ``/api/tasks``: the original server's fields.

    Every field is documented in docs/agent-modes.md (what it does here)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    messages: list[ChatMessage] = Field(..., min_length=1)
    session_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    # The caller's user comes from their key; another user_id is refused unless an admin sends it.
    user_id: str | None = Field(None, min_length=1, max_length=128)
    memory_type: Literal["session", "user"] | None = Field(None, description="The scope of recall.")
    # How the agent works: docs/agent-modes.md.
    agent_id: str | None = Field(
        None, min_length=1, max_length=48, pattern=NAME_PATTERN, description="A defined agent (GET /api/agents)."
    )
    agent_mode: AgentMode | None = Field(None, description="simple (default), multi or fibre (plan), team.")
    max_loop_count: int | None = Field(None, gt=0, description="Model calls per loop (≤ SAGE_AGENT_MAX_LOOP_COUNT).")
    deep_thinking: bool | None = Field(None, description="Reasoning on (a thinking step if needed) or off.")
    force_summary: bool = Field(False, description="Summarise all older history.")
    context_budget_config: ContextBudgetConfig | None = Field(None, description="This request's context shares.")
    # What it may use.
    available_tools: list[str] | None = Field(None, description="Tool, MCP server or MCP tool names; default all.")
    available_skills: list[str] | None = Field(None, description="Skills to use (GET /api/skills).")
    knowledge_bases: list[str] | None = Field(
        None,
        validation_alias=AliasChoices("knowledge_bases", "available_knowledge_bases"),
        description="Retrievers knowledge_search uses (also spelled available_knowledge_bases).",
    )
    available_sub_agent_ids: list[str] | None = Field(None, description="Team members by name (GET /api/agents).")
    custom_sub_agents: list[SubAgentSpec] | None = Field(None, description="Team members defined inline.")
    extra_mcp_config: dict[str, Any] | None = Field(
        None, description="Tool servers for this run only ({mcpServers: {name: spec}}); admins only."
    )
    # Prompt shaping.
    system_context: dict[str, Any] | None = Field(None, description="Facts listed in the system prompt.")
    system_prefix: str | None = Field(None, max_length=20_000, description="Text put before the system prompt.")
    llm_model_config: LLMModelConfig | None = Field(None, description="This request's model settings.")

    @property
    def mode(self) -> Literal["simple", "multi", "team"]:
        """``fibre`` is the original's name of the multi-step mode."""
        if self.agent_mode in ("fibre", "multi"):
            return "multi"
        return "team" if self.agent_mode == "team" else "simple"

    @model_validator(mode="after")
    def _ends_with_user_or_tool(self) -> StreamRequest:
        if self.messages[-1].role not in ("user", "tool"):
            raise ValueError("the last message must come from the user (or be a tool result)")
        return self

    @field_validator("knowledge_bases")
    @classmethod
    def _known_retrievers(cls, value: list[str] | None) -> list[str] | None:
        from sage_platform.filters import check_retriever_name

        # "files": the session's own workspace files, chunked and embedded on first search.
        return [n if n == "files" else check_retriever_name(n) for n in value] if value is not None else None


class McpServerSpec(BaseModel):
    """An MCP tool server: ``url`` for streamable_http and sse, ``command`` (+args, env) for stdio.

    The original server's spellings are accepted: ``streamable_http_url`` and ``sse_url`` for ``url``; ``kind``
    and ``description`` are kept and listed; ``tools`` limits which of the server's tools the agent sees."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(..., min_length=1, max_length=48, pattern=NAME_PATTERN)
    protocol: Literal["streamable_http", "sse", "stdio"] = "streamable_http"
    url: str | None = Field(None, validation_alias=AliasChoices("url", "streamable_http_url", "sse_url"))
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    api_key: SecretStr | None = None
    enabled: bool = True
    kind: str | None = Field(None, max_length=64)
    description: str | None = Field(None, max_length=2000)
    tools: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _protocol_from_url_spelling(cls, data: Any) -> Any:
        """``sse_url`` alone means protocol sse, as in the original."""
        if isinstance(data, dict) and "protocol" not in data and data.get("sse_url") and not data.get("url"):
            return {**data, "protocol": "sse"}
        return data

    @model_validator(mode="after")
    def _target_for_protocol(self) -> McpServerSpec:
        if self.protocol == "stdio" and not self.command:
            raise ValueError("protocol stdio needs a command")
        if self.protocol != "stdio" and not self.url:
            raise ValueError(f"protocol {self.protocol} needs a url")
        return self

    def public(self) -> dict[str, Any]:
        """The spec without its key: safe to list or log."""
        out = self.model_dump(exclude={"api_key", "env", "tools"})
        out["tool_allow_list"] = self.tools
        out["has_api_key"] = self.api_key is not None
        out["env"] = sorted(self.env)  # names only: values may be secrets
        return out
