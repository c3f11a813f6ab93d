"""``team``: a lead that delegates to sub-agents, running independent ones in parallel.

The lead's only tools are its sub-agents, one tool each, named and described as the sub-agent is, taking
a ``task``. The model picks sub-agents by name and description; calls it makes together run together.
Each sub-agent runs its own tool loop with its own system prompt, model, tool allow-list and budget of
model calls; its messages carry its ``agent_name``. The lead sees only each sub-agent's summary (its
answer, cut at ``SUMMARY_CHARS``), never its tool traffic.

Usage::

    lead.tools = team_tools(ctx, members)
    await run_team(ctx, lead, messages)
"""

from __future__ import annotations

from typing import Any

from sage_platform.agent.engine import Member, RunContext
from sage_platform.agent.tools import Tool, ToolContext

SUMMARY_CHARS = 4000
TEAM_PROMPT = (
    "You lead a team. Delegate work to your team members by calling them with a task; call several at once "
    "when their tasks do not depend on each other. Then answer the user from their reports."
)
MEMBER_PROMPT = "You are {name}, a member of a team. Do the task you are given, then report the result concisely."


def team_tools(ctx: RunContext, members: list[tuple[Member, str, str]]) -> dict[str, Tool]:
    """One tool per sub-agent: ``(member, description, system prompt)`` each."""
    return {member.name: _delegate(ctx, member, description, prompt) for member, description, prompt in members}


def _delegate(ctx: RunContext, member: Member, description: str, prompt: str) -> Tool:
    async def call(arguments: dict[str, Any], _: ToolContext) -> str:
        task = str(arguments.get("task") or "").strip()
        if not task:
            raise ValueError("give the team member a task")
        system = "\n\n".join(p for p in (prompt, MEMBER_PROMPT.format(name=member.name)) if p)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": task}]
        outcome = await ctx.tool_loop(member, messages, record=False, final=False, guidance=False)
        summary = outcome.answer.strip()
        if len(summary) > SUMMARY_CHARS:
            summary = summary[:SUMMARY_CHARS] + f" [cut at {SUMMARY_CHARS} characters]"
        ctx.publish(
            "stage_summary",
            member.name,
            content={"agent": member.name, "task": task, "summary": summary, "model_calls": outcome.calls},
        )
        return summary

    parameters = {
        "type": "object",
        "properties": {"task": {"type": "string", "description": "What this team member should do."}},
        "required": ["task"],
        "additionalProperties": False,
    }
    return Tool(member.name, description or f"Team member {member.name}.", parameters, call, source="team")


async def run_team(ctx: RunContext, lead: Member, messages: list[dict[str, Any]]) -> None:
    await ctx.think(lead, messages)
    head = messages[0]
    messages[0] = {**head, "content": f"{head['content']}\n\n{TEAM_PROMPT}"}
    await ctx.tool_loop(lead, messages)
