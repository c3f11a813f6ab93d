"""The one engine every agent mode runs on: a model → tools → model loop with a budget of model calls.

A ``RunContext`` is one run's shared state: where messages are published (stamped with the speaking agent's
name), the token usage, the messages that go into the session's history, and the user's guidance
injected mid-run. ``RunContext.tool_loop`` runs one agent (the main one, a step of a plan, or a team's
sub-agent) until it answers or its budget of model calls is spent; the last allowed call offers no
tools, so the loop always ends with an answer.

Usage::

    ctx = RunContext(run, session_id, llm, settings, deep_thinking=None)
    outcome = await ctx.tool_loop(member, messages)     # LoopOutcome(answer=..., failed_tools=..., ...)
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sage_platform.agent.llm import LLMClients, ReasoningDelta, TextDelta, ToolCallsDone, Usage
from sage_platform.agent.llm import parse_arguments as parse_tool_arguments
from sage_platform.agent.messages import MessageType, new_id, stream_message
from sage_platform.agent.runs import Run
from sage_platform.agent.tools import Tool, ToolContext, run_tool
from sage_platform.agent.tracing import span
from sage_platform.config import Settings
from sage_platform.llm_clients import ModelChoice

THINKING_PROMPT = (
    "Before answering, think the request through: what is asked, what you know, what you need to look up "
    "and in which order. Write your reasoning only; do not answer yet."
)


@dataclass
class Member:
    """One agent of a run: its name, model, tools, what its tools act for, and its budget of model calls."""

    name: str
    choice: ModelChoice
    tools: dict[str, Tool]
    context: ToolContext
    max_calls: int


@dataclass
class LoopOutcome:
    answer: str
    calls: int = 0  # model calls made
    tool_results: list[bool] = field(default_factory=list)  # ok of each tool call
    exhausted: bool = False  # the budget ran out while the model still wanted tools
    message_id: str = ""

    @property
    def tools_all_failed(self) -> bool:
        return bool(self.tool_results) and not any(self.tool_results)


class RunContext:
    """One run's publishing, usage, history and guidance, shared by every agent the run starts."""

    def __init__(
        self,
        run: Run,
        session_id: str,
        llm: LLMClients,
        settings: Settings,
        *,
        deep_thinking: bool | None,
        main_agent: str,
    ) -> None:
        self.run = run
        self.session_id = session_id
        self.llm = llm
        self.settings = settings
        self.deep_thinking = deep_thinking
        self.main_agent = main_agent
        self.usage = Usage()
        self.produced: list[dict[str, Any]] = []  # saved into the session's history

    def publish(self, kind: MessageType, agent: str, **fields: Any) -> dict[str, Any]:
        message = stream_message(kind, self.session_id, agent_name=agent, **fields)
        self.run.publish(message)
        return message

    def take_guidance(self, messages: list[dict[str, Any]]) -> None:
        """User messages injected since the last step join the conversation (and the history)."""
        for text in self.run.take_injected():
            message = {"role": "user", "content": text}
            messages.append(message)
            self.produced.append(message)
            self.publish("user_input", self.main_agent, content=text)

    def reasoning_capable(self, model: str) -> bool:
        return any(fnmatch.fnmatch(model.lower(), p) for p in self.settings.reasoning_model_list)

    async def think(self, member: Member, messages: list[dict[str, Any]]) -> None:
        """``deep_thinking`` on a model without its own reasoning: a visible thinking step first."""
        if not self.deep_thinking or self.reasoning_capable(member.choice.model):
            return
        message_id = new_id()
        text: list[str] = []
        with span("agent.think", agent=member.name):
            async for event in self.llm.stream(
                member.choice, [*messages, {"role": "system", "content": THINKING_PROMPT}]
            ):
                if isinstance(event, TextDelta | ReasoningDelta):
                    text.append(event.text)
                    self.publish("reasoning_content", member.name, content=event.text, message_id=message_id)
                elif isinstance(event, Usage):
                    self.usage.add(event)
        if text:
            messages.append({"role": "assistant", "content": "(my reasoning so far) " + "".join(text)})

    async def complete_text(
        self, member: Member, messages: list[dict[str, Any]], *, on_text: Callable[[str], None] | None = None
    ) -> str:
        """One model call without tools, its text collected (and passed to ``on_text`` as it arrives)."""
        text: list[str] = []
        async for event in self.llm.stream(member.choice, messages, None):
            if isinstance(event, TextDelta):
                text.append(event.text)
                if on_text is not None:
                    on_text(event.text)
            elif isinstance(event, Usage):
                self.usage.add(event)
        return "".join(text)

    async def tool_loop(
        self,
        member: Member,
        messages: list[dict[str, Any]],
        *,
        record: bool = True,
        final: bool = True,
        guidance: bool = True,
    ) -> LoopOutcome:
        """Run ``member`` on ``messages`` (extended in place) until it answers.

        ``record``: its messages go into the session's history. ``final``: its answer is published as the
        run's ``final_answer`` (otherwise it is returned for a plan step or a team lead to use)."""
        schemas = [t.schema() for t in member.tools.values()]
        outcome = LoopOutcome("")
        for step in range(member.max_calls):
            if guidance:
                self.take_guidance(messages)
            last_step = step == member.max_calls - 1
            message_id = new_id()
            text: list[str] = []
            calls: list[dict[str, Any]] = []
            outcome.calls += 1
            with span("llm.stream", model=member.choice.model, step=step, agent=member.name):
                async for event in self.llm.stream(member.choice, messages, None if last_step else schemas or None):
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                        self.publish("assistant_text", member.name, content=event.text, message_id=message_id)
                    elif isinstance(event, ReasoningDelta):
                        if self.deep_thinking is not False:
                            self.publish("reasoning_content", member.name, content=event.text, message_id=message_id)
                    elif isinstance(event, ToolCallsDone):
                        calls = event.calls
                    elif isinstance(event, Usage):
                        self.usage.add(event)
            answer = "".join(text)
            if calls and last_step:  # offered no tools, it still called some: the budget is spent, stop here
                calls = []
                answer = answer or f"I could not finish within {member.max_calls} model calls (max_loop_count)."
            if not calls and guidance and self.run.has_injected and not last_step:
                # The user added something while this answer was being written: answer that too.
                messages.append({"role": "assistant", "content": answer})
                if record:
                    self.produced.append(messages[-1])
                continue
            if not calls:
                outcome.answer, outcome.message_id = answer, message_id
                if record:
                    self.produced.append({"role": "assistant", "content": answer})
                if final:
                    self.publish("final_answer", member.name, content=answer, message_id=message_id)
                return outcome
            outcome.tool_results += await self.call_tools(member, messages, calls, answer, message_id, record=record)
            if step == member.max_calls - 2:  # the next call is the last: it gets no tools
                outcome.exhausted = True
                self.publish(
                    "loop_break",
                    member.name,
                    content=f"{member.name} used {member.max_calls - 1} of its {member.max_calls} model calls "
                    "(max_loop_count); the last one must answer without tools",
                )
        return outcome  # not reached: the last call always ends the loop

    async def call_tools(
        self,
        member: Member,
        messages: list[dict[str, Any]],
        calls: list[dict[str, Any]],
        text: str = "",
        message_id: str | None = None,
        *,
        record: bool = True,
    ) -> list[bool]:
        """Publish the calls, run them at once, publish and append each result; ``ok`` of each."""
        assistant = {"role": "assistant", "content": text or None, "tool_calls": calls}
        messages.append(assistant)
        if record:
            self.produced.append(assistant)
        self.publish("tool_call", member.name, tool_calls=calls, message_id=message_id)
        results = await asyncio.gather(*(self._call(member, call) for call in calls))
        for call, (ok, result) in zip(calls, results, strict=True):
            tool_message = {"role": "tool", "tool_call_id": call["id"], "content": result}
            messages.append(tool_message)
            if record:
                self.produced.append(tool_message)
            self.publish(
                "tool_call_result",
                member.name,
                content={"ok": ok, "name": call["function"]["name"], "result": result},
                tool_call_id=call["id"],
            )
        return [ok for ok, _ in results]

    async def _call(self, member: Member, call: dict[str, Any]) -> tuple[bool, str]:
        name = call["function"]["name"]
        tool = member.tools.get(name)
        if tool is None:
            return False, f"no tool named {name!r}; available: {', '.join(sorted(member.tools)) or 'none'}"
        try:
            arguments = parse_tool_arguments(call["function"]["arguments"])
        except ValueError as error:
            return False, f"bad arguments for {name}: {error}"
        with span("tool.call", tool=name, source=tool.source, agent=member.name):
            return await run_tool(
                tool,
                arguments,
                member.context,
                self.settings.tool_timeout if tool.source != "team" else self.settings.run_timeout_s,
                self.settings.tool_result_max_chars,
            )


ModeBody = Callable[[RunContext, Member, list[dict[str, Any]]], Awaitable[None]]
