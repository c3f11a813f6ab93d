"""The real agent server (uvicorn on loopback) and the scripted LLM, as tests/server uses them."""

from tests.server.conftest import llm, start_server  # noqa: F401 (fixtures)
