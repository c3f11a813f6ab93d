"""The agent loop: model → tool calls (in parallel) → tool results → model, streamed as it happens.

Every message goes into the run's buffer as soon as it exists; the run always ends with
``stream_end``, whether it answered, failed upstream, was interrupted, or lost its client. The
turn (new messages and the whole stream) is saved in one transaction at the end.

Usage::

    agent = Agent(settings, llm, store, tools_for=..., counter=TokenCounter.local())
    run = agent.start(StreamRequest(messages=[{"role": "user", "content": "Hi"}]))
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sage_platform.agent.budget import ContextBudget, check_new_message, plan_context
from sage_platform.agent.llm import (
    LLMClients,
    LLMStreamError,
    LLMStreamTruncated,
    ReasoningDelta,
    TextDelta,
    ToolCallsDone,
    Usage,
)
from sage_platform.agent.llm import parse_arguments as parse_tool_arguments
from sage_platform.agent.messages import new_id, stream_end, stream_message
from sage_platform.agent.requests import StreamRequest
from sage_platform.agent.runs import Run, RunRegistry
from sage_platform.agent.session_store import FinishedRun, SessionStore, StoredMessage, Turn
from sage_platform.agent.tools import Tool, ToolContext, run_tool
from sage_platform.agent.tracing import span
from sage_platform.agent.turn_writer import TurnWriter
from sage_platform.config import Settings
from sage_platform.identity import DEFAULT_USER
from sage_platform.llm_clients import ModelChoice
from sage_platform.tokenization import TokenCounter

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are Sage, an assistant with tools. Use knowledge_search for questions about the knowledge "
    "bases and cite the doc_id of each passage you use in square brackets. Use remember for lasting "
    "facts about the user, and recall to look them up. Answer concisely."
)
SUMMARY_PROMPT = (
    "Summarise the earlier conversation below for your own later use: keep facts, decisions, names, "
    "numbers and open questions; drop pleasantries. At most 200 words."
)


class UnknownTools(ValueError):
    pass


@dataclass
class PreparedRun:
    request: StreamRequest
    session_id: str
    choice: ModelChoice
    tools: dict[str, Tool]
    new_messages: list[StoredMessage]

    @property
    def user_id(self) -> str:
        return self.request.user_id or DEFAULT_USER


class Agent:
    def __init__(
        self,
        settings: Settings,
        llm: LLMClients,
        store: SessionStore,
        tools_for: Callable[[], dict[str, Tool]],
        counter: TokenCounter,
        runs: RunRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.store = store
        self.tools_for = tools_for
        self.counter = counter
        self.runs = runs or RunRegistry()
        self.writer = TurnWriter(store)

    def prepare(self, request: StreamRequest, *, admin: bool = False) -> PreparedRun:
        """Everything that can be refused before a stream starts: model, tools, message size."""
        choice = self.llm.resolve(request.llm_model_config, admin=admin)
        offered = self.tools_for()
        if request.available_tools is not None:
            unknown = [n for n in request.available_tools if not _matching(offered, n)]
            if unknown:
                valid = ", ".join(sorted(offered)) or "none"
                raise UnknownTools(f"unknown or unavailable tools: {', '.join(unknown)} (available: {valid})")
            offered = {k: t for k, t in offered.items() if any(_matches(t, n) for n in request.available_tools)}
        new = [StoredMessage(m.to_openai(), self.counter.count_message(m.to_openai())) for m in request.messages]
        check_new_message(sum(m.tokens for m in new), ContextBudget.from_settings(self.settings, choice.max_tokens))
        return PreparedRun(request, request.session_id or uuid.uuid4().hex, choice, offered, new)

    def start(self, prepared: PreparedRun) -> Run:
        return self.runs.start(prepared.session_id, lambda run: self._run(run, prepared), user_id=prepared.user_id)

    async def _run(self, run: Run, p: PreparedRun) -> None:
        sid = p.session_id
        produced: list[dict[str, Any]] = []
        usage = Usage()
        status = "completed"
        deadline = asyncio.timeout(self.settings.run_timeout_s)
        try:
            async with deadline:
                with span("agent.run", session_id=sid, user_id=p.user_id):
                    messages = await self._prompt(p)
                    await self._loop(run, p, messages, produced, usage)
        except asyncio.CancelledError:
            status = "interrupted"
            run.publish(stream_message("error", sid, content=f"stream stopped: {run.cancel_reason or 'cancelled'}"))
        except Exception as error:
            status = "incomplete" if isinstance(error, LLMStreamTruncated) else "failed"
            logger.warning("agent run %s %s: %s", run.run_id, status, error)
            if isinstance(error, TimeoutError) and deadline.expired():
                limit = self.settings.run_timeout_s
                message = f"the run passed its deadline of {limit:g} s (SAGE_RUN_TIMEOUT_S)"
            else:
                message = _describe(error)
            run.publish(stream_message("error", sid, content=message))
        finally:
            if usage.prompt_tokens or usage.completion_tokens:
                run.publish(stream_message("token_usage", sid, content=usage.as_dict()))
            # stream_end goes out only once the turn is durably saved, and says whether it was.
            saved = await self._save(run, p, produced, status)
            if not saved:
                run.publish(
                    stream_message("error", sid, content="this turn could not be saved; it is not in the history")
                )
            run.publish(stream_end(sid, len(run.events), saved=saved))

    async def _prompt(self, p: PreparedRun) -> list[dict[str, Any]]:
        """System prompt, summary of older history, the history that fits, then the new messages."""
        history = await asyncio.to_thread(self.store.history, p.session_id) if p.request.session_id else None
        system = SYSTEM_PROMPT
        if history is None or not history.messages:
            return [{"role": "system", "content": system}, *(m.message for m in p.new_messages)]
        budget = ContextBudget.from_settings(self.settings, p.choice.max_tokens)
        new_tokens = sum(m.tokens for m in p.new_messages)
        plan = plan_context(history, new_tokens, self.counter, budget, force_summary=p.request.force_summary)
        summary = plan.summary
        if plan.to_summarize:
            with span("agent.summarize", messages=len(plan.to_summarize)):
                summary = await self._summarize(p.choice, summary, [m.message for m in plan.to_summarize])
            await asyncio.to_thread(self.store.set_summary, p.session_id, summary, plan.to_summarize[-1].seq)
        if summary:
            system += f"\n\nSummary of the earlier conversation:\n{summary}"
        return [{"role": "system", "content": system}, *plan.kept_messages, *(m.message for m in p.new_messages)]

    async def _summarize(self, choice: ModelChoice, previous: str | None, messages: list[dict[str, Any]]) -> str:
        lines = [f"Earlier summary: {previous}"] if previous else []
        lines += [f"{m['role']}: {m.get('content') or m.get('tool_calls')}" for m in messages]
        return await self.llm.complete(
            choice, [{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": "\n".join(lines)}]
        )

    async def _loop(
        self, run: Run, p: PreparedRun, messages: list[dict[str, Any]], produced: list[dict[str, Any]], usage: Usage
    ) -> None:
        sid = p.session_id
        context = ToolContext(
            p.user_id,
            sid,
            p.request.memory_type or self.settings.memory_type,
            tuple(p.request.knowledge_bases or ()),
        )
        schemas = [t.schema() for t in p.tools.values()]
        for step in range(self.settings.agent_max_steps):
            last_step = step == self.settings.agent_max_steps - 1
            message_id = new_id()
            text: list[str] = []
            calls: list[dict[str, Any]] = []
            with span("llm.stream", model=p.choice.model, step=step):
                async for event in self.llm.stream(p.choice, messages, None if last_step else schemas or None):
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                        run.publish(stream_message("assistant_text", sid, content=event.text, message_id=message_id))
                    elif isinstance(event, ReasoningDelta):
                        run.publish(stream_message("reasoning_content", sid, content=event.text, message_id=message_id))
                    elif isinstance(event, ToolCallsDone):
                        calls = event.calls
                    elif isinstance(event, Usage):
                        usage.add(event)
            answer = "".join(text)
            if not calls:
                final = {"role": "assistant", "content": answer}
                produced.append(final)
                run.publish(stream_message("final_answer", sid, content=answer, message_id=message_id))
                return
            assistant = {"role": "assistant", "content": answer or None, "tool_calls": calls}
            messages.append(assistant)
            produced.append(assistant)
            run.publish(stream_message("tool_call", sid, tool_calls=calls, message_id=message_id))
            results = await asyncio.gather(*(self._call(p.tools, call, context) for call in calls))
            for call, (ok, result) in zip(calls, results, strict=True):
                tool_message = {"role": "tool", "tool_call_id": call["id"], "content": result}
                messages.append(tool_message)
                produced.append(tool_message)
                run.publish(
                    stream_message(
                        "tool_call_result",
                        sid,
                        content={"ok": ok, "name": call["function"]["name"], "result": result},
                        tool_call_id=call["id"],
                    )  # fmt: skip
                )

    async def _call(self, tools: dict[str, Tool], call: dict[str, Any], context: ToolContext) -> tuple[bool, str]:
        name = call["function"]["name"]
        tool = tools.get(name)
        if tool is None:
            return False, f"no tool named {name!r}; available: {', '.join(sorted(tools)) or 'none'}"
        try:
            arguments = parse_tool_arguments(call["function"]["arguments"])
        except ValueError as error:
            return False, f"bad arguments for {name}: {error}"
        with span("tool.call", tool=name, source=tool.source):
            return await run_tool(
                tool, arguments, context, self.settings.tool_timeout, self.settings.tool_result_max_chars
            )

    async def _save(self, run: Run, p: PreparedRun, produced: list[dict[str, Any]], status: str) -> bool:
        """Save the turn (and the run's stream, stream_end included); True once it is committed."""
        new = [*p.new_messages, *(StoredMessage(m, self.counter.count_message(m)) for m in produced)]
        title = next((m.message.get("content") for m in p.new_messages if m.message.get("role") == "user"), "")
        # The stored stream ends with the stream_end that will be published after this save.
        events = [*run.events, stream_end(p.session_id, len(run.events), saved=True)]
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


def _matching(tools: dict[str, Tool], name: str) -> bool:
    return any(_matches(t, name) for t in tools.values())


def _describe(error: BaseException) -> str:
    """An upstream failure as a kind (timeout, unreachable, HTTP status): never the upstream's own text,
    which could carry secrets or let a caller probe other hosts through the server."""
    name = type(error).__name__
    status = getattr(error, "status_code", None)
    if name in ("APITimeoutError", "TimeoutError"):
        return "the language model did not answer in time (timeout); try again"
    if name == "APIConnectionError":
        return "the language model cannot be reached (connection refused or unreachable)"
    if status is not None:
        return f"the language model answered HTTP {status}"
    if isinstance(error, LLMStreamTruncated):
        return "the language model's answer was cut off (its stream ended early); the turn is kept as incomplete"
    if isinstance(error, LLMStreamError):
        return "the language model reported an error inside its answer stream"
    return f"{name}: {error}"
