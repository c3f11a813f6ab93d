"""The real agent server (uvicorn on loopback) and the scripted LLM, as tests/server uses them."""

from tests.ops.conftest import platform  # noqa: F401 (fixture: a platform holding real indexed data)
from tests.server.conftest import llm, start_server  # noqa: F401 (fixtures)
