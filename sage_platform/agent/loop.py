"""The agent: a request checked and resolved, run in its mode, streamed as it happens, then saved.

``prepare`` refuses what can be refused before a stream starts (model, tools, skills, sub-agents,
message size); ``start`` runs the request's mode (``sage_platform.agent.modes``) on the engine
(``sage_platform.agent.engine``). Every message goes into the run's buffer as soon as it exists; the
run always ends with ``stream_end``, whether it answered, failed upstream, was interrupted, or lost
its client. The turn (new messages and the whole stream) is saved in one transaction at the end.

Usage::

    agent = Agent(settings, llm, store, tools_for=..., counter=TokenCounter.local())
    run = await agent.start(agent.prepare(StreamRequest(messages=[{"role": "user", "content": "Hi"}])))
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sage_platform.agent.budget import ContextBudget, check_new_message, plan_context
from sage_platform.agent.chat_http import LLMUnreachable
from sage_platform.agent.engine import Member, RunContext
from sage_platform.agent.llm import LLMClients, LLMNotConfigured, LLMStreamError, LLMStreamTruncated
from sage_platform.agent.messages import stream_end
from sage_platform.agent.modes import MODES
from sage_platform.agent.modes.retrieval_only import run_retrieval_only
from sage_platform.agent.modes.team import team_tools
from sage_platform.agent.profiles import AgentRegistry, RunningConfig
from sage_platform.agent.prompting import SUMMARY_PROMPT, system_prompt
from sage_platform.agent.requests import LLMModelConfig, McpServerSpec, StreamRequest, SubAgentSpec
from sage_platform.agent.runs import Run, RunRegistry
from sage_platform.agent.session_store import SessionStore
from sage_platform.agent.skills import Skill, SkillLibrary, read_skill_file_tool
from sage_platform.agent.tool_servers import McpServer
from sage_platform.agent.tools import Tool, ToolContext
from sage_platform.agent.tracing import current_trace_id, span
from sage_platform.agent.turn_writer import TurnWriter
from sage_platform.agent.turns import FinishedRun, StoredMessage, Turn
from sage_platform.config import Settings
from sage_platform.generation import Answerer
from sage_platform.identity import DEFAULT_USER
from sage_platform.llm_clients import ModelChoice
from sage_platform.retrieval.types import Hit
from sage_platform.tokenization import TokenCounter

logger = logging.getLogger(__name__)


class UnknownTools(ValueError):
    pass


class TeamWithoutMembers(ValueError):
    pass


class RequestRefused(PermissionError):
    """The request asks for something only an admin may (the message says what)."""


DEFAULT_AGENT = "sage"


@dataclass
class PreparedRun:
    request: StreamRequest
    session_id: str
    choice: ModelChoice
    tools: dict[str, Tool]
    new_messages: list[StoredMessage]
    budget: ContextBudget
    max_calls: int
    agent: SubAgentSpec | None = None  # the defined agent named by agent_id
    skills: list[Skill] = field(default_factory=list)
    members: list[tuple[SubAgentSpec, dict[str, Tool]]] = field(default_factory=list)
    extra_servers: list[McpServerSpec] = field(default_factory=list)
    retrieval_only: bool = False  # no model configured: knowledge_search and the extractive answerer

    @property
    def user_id(self) -> str:
        return self.request.user_id or DEFAULT_USER

    @property
    def agent_name(self) -> str:
        return self.request.agent_id or DEFAULT_AGENT


class Agent:
    def __init__(
        self,
        settings: Settings,
        llm: LLMClients,
        store: SessionStore,
        tools_for: Callable[[], dict[str, Tool]],
        counter: TokenCounter,
        runs: RunRegistry | None = None,
        *,
        skills: SkillLibrary | None = None,
        config: RunningConfig | None = None,
        extractive: Callable[[], Answerer] | None = None,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.store = store
        self.tools_for = tools_for
        self.counter = counter
        self.runs = runs or RunRegistry()
        self.writer = TurnWriter(store)
        self.skills = skills or SkillLibrary(settings.skills_dir)
        self.config = config or RunningConfig()
        self.agents = AgentRegistry(self.config.agents)
        self.extractive = extractive

    def prepare(self, request: StreamRequest, *, admin: bool = False) -> PreparedRun:
        """Everything that can be refused before a stream starts: model, tools, skills, team, message size."""
        agent = None
        if request.agent_id not in (None, DEFAULT_AGENT):
            agent = self.agents.get([request.agent_id])[0]
        override = request.llm_model_config
        if agent is not None and agent.model and not (override and override.model):
            override = (override or LLMModelConfig()).model_copy(update={"model": agent.model})
        retrieval_only = False
        try:
            choice = self.llm.resolve(override, admin=admin)
        except LLMNotConfigured:
            if override is not None or self.extractive is None:
                raise  # a request that names a model but not where it is: say so
            retrieval_only = True
            choice = ModelChoice("none", None, None, self.settings.default_llm_max_tokens, 0.0, 1.0)
        everything = self.tools_for()
        offered = _allowed(everything, request.available_tools)
        if agent is not None and agent.tools is not None:
            offered = _allowed(offered, agent.tools, f"agent {agent.name}")
        skills = self.skills.select(request.available_skills) if request.available_skills else []
        for skill in skills:  # a selected skill brings its tools, whatever else the request limits
            offered |= {k: t for k, t in everything.items() if any(_matches(t, n) for n in skill.tools)}
        if any(s.files for s in skills):
            offered["read_skill_file"] = read_skill_file_tool(skills)
        limit = self.settings.agent_max_loop_count
        if request.max_loop_count is not None and request.max_loop_count > limit:
            raise UnknownTools(f"max_loop_count {request.max_loop_count} is over this server's limit of {limit} "
                               "(SAGE_AGENT_MAX_LOOP_COUNT)")  # fmt: skip
        members = self._members(request, offered) if request.mode == "team" else []
        extra = self._extra_servers(request, admin)
        new = [StoredMessage(m.to_openai(), self.counter.count_message(m.to_openai())) for m in request.messages]
        budget = ContextBudget.from_settings(self.settings, choice.max_tokens, request.context_budget_config)
        check_new_message(sum(m.tokens for m in new), budget)
        max_calls = request.max_loop_count or self.settings.agent_max_steps
        session_id = request.session_id or uuid.uuid4().hex
        prepared = PreparedRun(
            request, session_id, choice, offered, new, budget, max_calls, agent, skills, members, extra
        )
        if retrieval_only:
            prepared.retrieval_only = True
            prepared.tools = {"knowledge_search": everything["knowledge_search"]}
        return prepared

    def _members(self, request: StreamRequest, offered: dict[str, Tool]) -> list[tuple[SubAgentSpec, dict[str, Tool]]]:
        specs = [*self.agents.get(request.available_sub_agent_ids or []), *(request.custom_sub_agents or [])]
        if not specs:
            raise TeamWithoutMembers(
                "agent_mode team needs sub-agents: available_sub_agent_ids (defined: "
                f"{', '.join(sorted(self.agents.agents)) or 'none'}) or custom_sub_agents"
            )
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise TeamWithoutMembers(f"sub-agent names must differ: {', '.join(names)}")
        return [(s, _allowed(offered, s.tools, f"sub-agent {s.name}")) for s in specs]  # no list: the request's tools

    def _extra_servers(self, request: StreamRequest, admin: bool) -> list[McpServerSpec]:
        """``extra_mcp_config``: tool servers for this run only. Connecting to a URL (or starting a program)
        a request names is an admin's decision, and stdio commands must still be allowed by name."""
        if not request.extra_mcp_config:
            return []
        if not admin:
            raise RequestRefused("extra_mcp_config needs an admin key: ask an admin to register the server instead")
        data = request.extra_mcp_config
        entries = [{"name": n, **s} for n, s in data.get("mcpServers", data).items() if isinstance(s, dict)]
        specs = [McpServerSpec.model_validate(entry) for entry in entries]
        allowed = self.settings.mcp_stdio_command_list
        for spec in specs:
            if spec.protocol == "stdio" and spec.command not in allowed:
                raise RequestRefused(f"stdio command {spec.command!r} is not in SAGE_MCP_STDIO_COMMANDS")
        return specs

    async def start(self, prepared: PreparedRun) -> Run:
        return await self.runs.start(
            prepared.session_id, lambda run: self._run(run, prepared), user_id=prepared.user_id
        )

    async def _run(self, run: Run, p: PreparedRun) -> None:
        sid = p.session_id
        ctx = RunContext(
            run, sid, self.llm, self.settings, deep_thinking=p.request.deep_thinking, main_agent=p.agent_name
        )
        status = "completed"
        trace_id: str | None = None
        deadline = asyncio.timeout(self.settings.run_timeout_s)
        servers = [McpServer(spec) for spec in p.extra_servers]
        try:
            async with deadline:
                with span("agent.run", session_id=sid, user_id=p.user_id, mode=p.request.mode):
                    trace_id = current_trace_id()
                    await asyncio.gather(*(server.start() for server in servers))
                    lead = self._lead(ctx, p, servers)
                    messages = await self._prompt(p)
                    if p.retrieval_only and self.extractive is not None:
                        await run_retrieval_only(ctx, lead, messages, answer=_first_answer(self.extractive()))
                    else:
                        await MODES[p.request.mode](ctx, lead, messages)
        except asyncio.CancelledError:
            status = "interrupted"
            ctx.publish("error", ctx.main_agent, content=f"stream stopped: {run.cancel_reason or 'cancelled'}")
        except Exception as error:
            status = "incomplete" if isinstance(error, LLMStreamTruncated) else "failed"
            logger.warning("agent run %s %s: %s", run.run_id, status, error)
            if isinstance(error, TimeoutError) and deadline.expired():
                limit = self.settings.run_timeout_s
                message = f"the run passed its deadline of {limit:g} s (SAGE_RUN_TIMEOUT_S)"
            else:
                message = _describe(error)
            ctx.publish("error", ctx.main_agent, content=message)
        finally:
            await asyncio.gather(*(server.stop() for server in servers), return_exceptions=True)
            if ctx.usage.prompt_tokens or ctx.usage.completion_tokens:
                ctx.publish("token_usage", ctx.main_agent, content=ctx.usage.as_dict())
            # stream_end goes out only once the turn is durably saved, and says whether it was.
            saved = await self._save(run, p, ctx.produced, status, trace_id)
            if not saved:
                ctx.publish("error", ctx.main_agent, content="this turn could not be saved; it is not in the history")
            run.end_with(stream_end(sid, len(run.events), saved=saved, trace_id=trace_id))

    def _lead(self, ctx: RunContext, p: PreparedRun, servers: list[McpServer]) -> Member:
        context = ToolContext(
            p.user_id,
            p.session_id,
            p.request.memory_type or self.settings.memory_type,
            tuple(p.request.knowledge_bases or ()),
        )
        tools = {**p.tools, **{t.name: t for s in servers for t in s.tools.values()}}
        if p.request.mode == "team":
            members = [
                (Member(spec.name, _model(p.choice, spec.model), member_tools, context,
                        spec.max_loop_count or self.settings.agent_max_steps), spec.description, spec.system_prompt)
                for spec, member_tools in p.members
            ]  # fmt: skip
            tools = team_tools(ctx, members)
        return Member(p.agent_name, p.choice, tools, context, p.max_calls)

    async def _prompt(self, p: PreparedRun) -> list[dict[str, Any]]:
        """System prompt, summary of older history, the history that fits, then the new messages."""
        history = await asyncio.to_thread(self.store.history, p.session_id) if p.request.session_id else None
        kept: list[dict[str, Any]] = []
        summary = history.summary if history else None
        if history is not None and history.messages:
            force = p.request.force_summary or self.settings.force_summary
            plan = plan_context(
                history, sum(m.tokens for m in p.new_messages), self.counter, p.budget, force_summary=force
            )
            summary = plan.summary
            if plan.to_summarize and not p.retrieval_only:  # summaries need the model
                with span("agent.summarize", messages=len(plan.to_summarize)):
                    summary = await self._summarize(p.choice, summary, [m.message for m in plan.to_summarize])
                await asyncio.to_thread(self.store.set_summary, p.session_id, summary, plan.to_summarize[-1].seq)
            kept = plan.kept_messages
        system = system_prompt(p.request, self.config, agent=p.agent, skills=p.skills, summary=summary)
        return [{"role": "system", "content": system}, *kept, *(m.message for m in p.new_messages)]

    async def _summarize(self, choice: ModelChoice, previous: str | None, messages: list[dict[str, Any]]) -> str:
        lines = [f"Earlier summary: {previous}"] if previous else []
        lines += [f"{m['role']}: {m.get('content') or m.get('tool_calls')}" for m in messages]
        return await self.llm.complete(
            choice, [{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": "\n".join(lines)}]
        )

    async def _save(
        self, run: Run, p: PreparedRun, produced: list[dict[str, Any]], status: str, trace_id: str | None = None
    ) -> bool:
        """Save the turn (and the run's stream, stream_end included); True once it is committed."""
        new = [*p.new_messages, *(StoredMessage(m, self.counter.count_message(m)) for m in produced)]
        title = next((m.message.get("content") for m in p.new_messages if m.message.get("role") == "user"), "")
        # The stored stream ends with the stream_end that will be published after this save.
        events = [*run.events, stream_end(p.session_id, len(run.events), saved=True, trace_id=trace_id)]
        finished = FinishedRun(run.run_id, status, events, run.started_at)
        save = self.writer.save(Turn(p.session_id, p.user_id, new, finished, str(title or "")))
        try:
            await asyncio.shield(save)
        except asyncio.CancelledError:
            return True  # shutting down while saving: the shielded write still completes
        except Exception:
            logger.exception("could not save session %s", p.session_id)
            return False
        return True


def _matches(tool: Tool, name: str) -> bool:
    return name in (tool.name, tool.source, tool.extra.get("remote_name"))


def _allowed(tools: dict[str, Tool], names: list[str] | None, who: str = "the request") -> dict[str, Tool]:
    """The tools ``names`` allow (a tool's name, its server's name, or its name on that server)."""
    if names is None:
        return tools
    unknown = [n for n in names if not any(_matches(t, n) for t in tools.values())]
    if unknown:
        valid = ", ".join(sorted(tools)) or "none"
        raise UnknownTools(f"unknown or unavailable tools for {who}: {', '.join(unknown)} (available: {valid})")
    return {k: t for k, t in tools.items() if any(_matches(t, n) for n in names)}


def _first_answer(answerer: Answerer) -> Callable[[str, list[Hit]], str]:
    return lambda question, hits: answerer.answer_many([question], [hits])[0]


def _model(choice: ModelChoice, model: str | None) -> ModelChoice:
    """A sub-agent's model: another model name at the same endpoint, with the same key."""
    return replace(choice, model=model) if model else choice


def _describe(error: BaseException) -> str:
    """An upstream failure as a kind (timeout, unreachable, HTTP status): never the upstream's own text,
    which could carry secrets or let a caller probe other hosts through the server."""
    name = type(error).__name__
    status = getattr(error, "status_code", None)
    if isinstance(error, TimeoutError) or name == "APITimeoutError":
        return "the language model did not answer in time (timeout); try again"
    if isinstance(error, LLMUnreachable) or name == "APIConnectionError":
        return "the language model cannot be reached (connection refused or unreachable)"
    if status is not None:
        return f"the language model answered HTTP {status}"
    if isinstance(error, LLMStreamTruncated):
        return "the language model's answer was cut off (its stream ended early); the turn is kept as incomplete"
    if isinstance(error, LLMStreamError):
        return "the language model reported an error inside its answer stream"
    return f"{name}: {error}"
