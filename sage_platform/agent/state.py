"""What one server process shares across requests: settings, store, LLM clients, tools, runs.

Usage::

    state = AgentState.create(settings)     # in the app's lifespan
    await state.start(); ...; await state.close()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from sage_platform.agent.coordination import StreamCoordinator
from sage_platform.agent.file_tools import file_tools
from sage_platform.agent.llm import LLMClients
from sage_platform.agent.loop import Agent
from sage_platform.agent.profiles import RunningConfig
from sage_platform.agent.runs import RunRegistry
from sage_platform.agent.session_store import SessionStore
from sage_platform.agent.skills import SkillLibrary
from sage_platform.agent.tool_servers import ToolServerRegistry
from sage_platform.agent.tools import Tool, builtin_tools
from sage_platform.config import Settings
from sage_platform.identity import KeyRing
from sage_platform.tokenization import TokenCounter
from sage_platform.workspace import SessionIndex, WorkspaceFiles, file_store

if TYPE_CHECKING:
    from sage_platform.agent.memory import AgentMemory
    from sage_platform.generation.extractive import ExtractiveAnswerer
    from sage_platform.platform import Platform
    from sage_platform.retrieval.types import Retriever

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class AgentState:
    settings: Settings
    platform: Platform
    store: SessionStore
    llm: LLMClients
    mcp: ToolServerRegistry
    keys: KeyRing
    agent: Agent
    files: WorkspaceFiles
    memory: Callable[[], AgentMemory]  # the one memory store, built on first use
    builtins: dict[str, Tool] = field(default_factory=dict)
    retrievers: dict[str, Retriever] = field(default_factory=dict)
    workspace_problem: str | None = None  # why the workspace's object storage cannot be used, if it cannot

    @classmethod
    def create(
        cls, settings: Settings, platform: Platform | None = None, *, successor_of: str | None = None
    ) -> AgentState:
        """``platform``: one already built in this process (its database and embedder are reused);
        ``successor_of``: an agent task's name, whose earlier attempts' session leases this one takes over."""
        from sage_platform.platform import Platform

        platform = platform or Platform(settings)
        store = SessionStore.from_settings(settings, platform.db.url if settings.db_type == "postgres" else None)
        retrievers: dict[str, Retriever] = {}
        files = WorkspaceFiles(platform.db, file_store(settings))
        index = _Lazy(lambda: SessionIndex(platform.db, files, platform.splitter, platform.embedder))
        memory = _Lazy(lambda: _memory(platform))
        builtins = builtin_tools(
            platform.settings.retriever,
            lambda name: _retriever(platform, retrievers, name),
            memory.get,
            lambda user, session, query, k: index.get().search(user, session, query, k),
        )
        builtins |= file_tools(lambda: files, index.get, max_file_bytes=settings.workspace_max_file_bytes)
        mcp = ToolServerRegistry()
        llm = LLMClients(settings)

        def tools() -> dict[str, Tool]:
            return {**builtins, **mcp.tools()}

        config = RunningConfig.load(path) if (path := settings.preset_running_config_path) else RunningConfig()
        agent = Agent(
            settings,
            llm,
            store,
            tools,
            TokenCounter.local(),
            RunRegistry(
                settings.max_active_streams,
                settings.max_streams_per_user,
                StreamCoordinator(
                    platform.db.url,
                    lease_seconds=settings.stream_lease_seconds,
                    max_total=settings.max_streams_total,
                    successor_of=successor_of,
                ),
            ),
            skills=SkillLibrary(settings.skills_dir),
            config=config,
            extractive=_Lazy(lambda: _extractive(platform)).get,
        )
        return cls(
            settings,
            platform,
            store,
            llm,
            mcp,
            KeyRing.from_settings(settings, platform.db, audience="api"),
            agent,
            files,
            memory.get,
            builtins,
            retrievers,
        )

    def search_retriever(self, name: str) -> Retriever:
        """The retriever ``name``, shared with the agent's ``knowledge_search``."""
        return _retriever(self.platform, self.retrievers, name)

    @property
    def coordinator(self) -> StreamCoordinator:
        coordinator = self.agent.runs.coordinator
        assert isinstance(coordinator, StreamCoordinator), "the server's runs are coordinated through the database"
        return coordinator

    async def start(self) -> None:
        from sage_platform.ops.storage import workspace_storage_problem

        await self.coordinator.start()

        self.workspace_problem = await asyncio.to_thread(workspace_storage_problem, self.settings)
        if self.workspace_problem:
            logger.error("%s", self.workspace_problem)
        path = self.settings.mcp_config_path
        if path is None:  # only an operator's explicit SAGE_MCP_CONFIG_PATH, never a file in the cwd
            return
        try:
            count = await self.mcp.load_file(path)
        except ValueError as error:  # a bad preset file is reported, the server still starts
            logger.error("MCP preset %s not loaded: %s", path, error)
        else:
            if count:
                logger.info("loaded %d MCP servers from %s", count, path)

    async def close(self) -> None:
        await self.agent.runs.close()
        await self.coordinator.close()
        await asyncio.to_thread(self.agent.writer.close)
        await self.mcp.close()
        await self.llm.close()
        await asyncio.to_thread(self.store.close)


class _Lazy(Generic[T]):
    """A part built on first use (the embedder loads only when a tool needs it), then kept."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = self._build()
        return self._value


def _memory(platform: Platform) -> AgentMemory:
    from sage_platform.agent.memory import AgentMemory
    from sage_platform.memory_store import MemoryStore

    return AgentMemory(MemoryStore.for_settings(platform.settings, platform.db, platform.embedder), platform.embedder)


def _extractive(platform: Platform) -> ExtractiveAnswerer:
    from sage_platform.generation.extractive import ExtractiveAnswerer

    return ExtractiveAnswerer(platform.embedder)


def _retriever(platform: Platform, cache: dict[str, Retriever], name: str) -> Retriever:
    """The platform's retriever ``name``, built on first use and kept (it keeps its own caches)."""
    if name not in cache:
        cache[name] = platform.retriever_named(name)
    return cache[name]
