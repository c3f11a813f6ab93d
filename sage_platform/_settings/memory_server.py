"""The MCP memory server (``sage mcp``) and the coding-agent hooks that talk to it."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class MemoryServerSettings(BaseModel):
    mcp_host: str = Field("127.0.0.1", description="Memory server address; loopback unless asked otherwise.")
    mcp_port: int = Field(17800, gt=0, lt=65536, description="Memory server port (path /mcp).")
    mcp_tokens: SecretStr | None = Field(
        None, description="Memory-server tokens: user=TOKEN,user=TOKEN (a bare TOKEN: user default)."
    )
    mcp_no_auth: bool = Field(False, description="Serve the memory server without tokens (loopback only).")
    mcp_url: str | None = Field(
        None, description="The memory server `sage memory hook` talks to; default http://mcp_host:mcp_port/mcp."
    )
    mcp_token: SecretStr | None = Field(None, description="The token `sage memory hook` sends to the memory server.")
    memory_dedup_seconds: float = Field(300.0, ge=0, description="Same content in a session within it: one memory.")
    memory_max_chars: int = Field(32_000, gt=0, description="Larger memories are rejected with a reason.")
