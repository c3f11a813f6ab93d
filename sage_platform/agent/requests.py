"""Request bodies of the agent server, validated by FastAPI (a bad body gets 422 naming the field)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ROLES = ("system", "user", "assistant", "tool")


class LLMModelConfig(BaseModel):
    """Per-request overrides of the default model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    max_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)


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
    """The body of ``POST /api/stream``, ``/api/chat`` and ``/api/tasks``."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(..., min_length=1)
    session_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    # The caller's user comes from their key; another user_id is refused unless an admin sends it.
    user_id: str | None = Field(None, min_length=1, max_length=128)
    memory_type: Literal["session", "user"] | None = None
    available_tools: list[str] | None = None
    knowledge_bases: list[str] | None = None
    llm_model_config: LLMModelConfig | None = None
    force_summary: bool = False

    @model_validator(mode="after")
    def _ends_with_user_or_tool(self) -> StreamRequest:
        if self.messages[-1].role not in ("user", "tool"):
            raise ValueError("the last message must come from the user (or be a tool result)")
        return self

    @field_validator("knowledge_bases")
    @classmethod
    def _known_retrievers(cls, value: list[str] | None) -> list[str] | None:
        from sage_platform.filters import check_retriever_name

        return [check_retriever_name(name) for name in value] if value is not None else None


class McpServerSpec(BaseModel):
    """An MCP tool server: ``url`` for streamable_http and sse, ``command`` (+args, env) for stdio."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_-]+$")
    protocol: Literal["streamable_http", "sse", "stdio"] = "streamable_http"
    url: str | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    api_key: SecretStr | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _target_for_protocol(self) -> McpServerSpec:
        if self.protocol == "stdio" and not self.command:
            raise ValueError("protocol stdio needs a command")
        if self.protocol != "stdio" and not self.url:
            raise ValueError(f"protocol {self.protocol} needs a url")
        return self

    def public(self) -> dict[str, Any]:
        """The spec without its key: safe to list or log."""
        out = self.model_dump(exclude={"api_key", "env"})
        out["has_api_key"] = self.api_key is not None
        out["env"] = sorted(self.env)  # names only: values may be secrets
        return out
