"""``multi`` (``fibre``): analyse the task, plan numbered steps, run each with tools, summarise, answer.

The plan is streamed as ``task_analysis``; each step runs its own tool loop within ``max_loop_count``
model calls and ends with a ``stage_summary``. A step that fails (it says ``STEP FAILED``, every tool
call it made failed, or it gave nothing) makes the planner re-plan the steps left, at most
``MAX_REPLANS`` times. User guidance injected mid-run joins the conversation at the next step.

Usage::

    await run_multi_step(ctx, lead, messages)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from sage_platform.agent.engine import Member, RunContext

MAX_STEPS = 8
MAX_REPLANS = 2
FAILED = "STEP FAILED"
PLANNER_PROMPT = (
    "Plan the work for the user's latest request. First analyse the task, then split it into at most "
    f"{MAX_STEPS} numbered steps, each one doable with these tools: {{tools}}. Reply with JSON only, in the "
    'form {{"analysis": "...", "steps": ["...", "..."]}}.'
)
REPLAN_PROMPT = (
    "REPLAN. Steps done so far, with their results:\n{done}\nStep '{step}' failed: {reason}\n"
    "Plan the steps still needed to answer the request, in the same JSON form."
)
STEP_PROMPT = (
    "You are carrying out step {index} of {total} of a plan for the user's request. Use the tools you need, "
    f"then report what you found or did, concisely. If the step cannot be done, begin your answer with {FAILED}: "
    "and say why."
)
FINAL_PROMPT = "All steps are done. Write the final answer to my request now, from the step results above."


@dataclass
class Plan:
    analysis: str
    steps: list[str]

    def public(self, first: int) -> dict[str, Any]:
        return {
            "analysis": self.analysis,
            "steps": [{"index": first + i, "description": s} for i, s in enumerate(self.steps)],
        }


def parse_plan(text: str, fallback: str) -> Plan:
    """The planner's JSON; else its numbered lines; else one step: the request itself."""
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            data = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("steps"), list):
            steps = [str(s.get("description", s) if isinstance(s, dict) else s).strip() for s in data["steps"]]
            return Plan(str(data.get("analysis", "")).strip(), [s for s in steps if s][:MAX_STEPS] or [fallback])
    numbered = re.findall(r"^\s*\d+[.)]\s+(.+?)\s*$", text, flags=re.MULTILINE)
    if numbered:
        return Plan(text.split("\n", 1)[0].strip() if not re.match(r"\s*\d", text) else "", numbered[:MAX_STEPS])
    return Plan(text.strip(), [fallback])


def _with_system(messages: list[dict[str, Any]], extra: str) -> list[dict[str, Any]]:
    """The conversation with ``extra`` added to its system prompt."""
    head, rest = messages[0], messages[1:]
    return [{**head, "content": f"{head['content']}\n\n{extra}"}, *rest]


def _request_text(messages: list[dict[str, Any]]) -> str:
    last = next((m for m in reversed(messages) if m["role"] == "user"), {"content": ""})
    content = last.get("content") or ""
    return content if isinstance(content, str) else json.dumps(content)


async def run_multi_step(ctx: RunContext, lead: Member, messages: list[dict[str, Any]]) -> None:
    await ctx.think(lead, messages)
    tools = ", ".join(sorted(lead.tools)) or "none"
    planner = replace(lead, tools={})
    plan = parse_plan(
        await ctx.complete_text(planner, _with_system(messages, PLANNER_PROMPT.format(tools=tools))),
        _request_text(messages),
    )
    ctx.publish("task_analysis", lead.name, content=plan.public(1), metadata={"replan": 0})
    done: list[tuple[str, str]] = []  # (step, summary)
    queue, replans = list(plan.steps), 0
    while queue and len(done) < MAX_STEPS * (MAX_REPLANS + 1):
        step = queue.pop(0)
        ctx.take_guidance(messages)
        index, total = len(done) + 1, len(done) + 1 + len(queue)
        summary, failed, reason = await _run_step(ctx, lead, messages, done, step, index, total)
        status = "failed" if failed else "completed"
        ctx.publish(
            "stage_summary",
            lead.name,
            content={"step": index, "description": step, "status": status, "summary": summary},
            metadata={"step": index, "of": total},
        )
        done.append((step, summary if not failed else f"{FAILED}: {reason}"))
        if failed and replans < MAX_REPLANS:
            replans += 1
            listing = "\n".join(f"{i}. {s}: {r}" for i, (s, r) in enumerate(done, 1))
            prompt = (
                PLANNER_PROMPT.format(tools=tools)
                + "\n\n"
                + REPLAN_PROMPT.format(done=listing, step=step, reason=reason)
            )
            new_plan = parse_plan(await ctx.complete_text(planner, _with_system(messages, prompt)), step)
            queue = new_plan.steps
            ctx.publish(
                "task_analysis", lead.name, content=new_plan.public(len(done) + 1), metadata={"replan": replans}
            )
    ctx.take_guidance(messages)
    final = [*messages, *_results(done), {"role": "user", "content": FINAL_PROMPT}]
    # No tools; a second call only if the user adds guidance while the answer is written.
    await ctx.tool_loop(replace(lead, tools={}, max_calls=2), final)


def _results(done: list[tuple[str, str]]) -> list[dict[str, Any]]:
    if not done:
        return []
    lines = "\n".join(f"Step {i} ({step}): {summary}" for i, (step, summary) in enumerate(done, 1))
    return [{"role": "assistant", "content": f"Results of the plan's steps so far:\n{lines}"}]


async def _run_step(
    ctx: RunContext,
    lead: Member,
    messages: list[dict[str, Any]],
    done: list[tuple[str, str]],
    step: str,
    index: int,
    total: int,
) -> tuple[str, bool, str]:
    """The step's summary, whether it failed, and why."""
    conversation = _with_system(messages, STEP_PROMPT.format(index=index, total=total))
    step_messages = [*conversation, *_results(done), {"role": "user", "content": f"Step {index} of {total}: {step}"}]
    outcome = await ctx.tool_loop(lead, step_messages, record=False, final=False, guidance=False)
    answer = outcome.answer.strip()
    if answer.upper().startswith(FAILED):
        return answer, True, answer[len(FAILED) :].lstrip(" :") or "the step said it failed"
    if outcome.tools_all_failed:
        return answer, True, "every tool call of the step failed"
    if not answer:
        return answer, True, "the step gave no result"
    return answer, False, ""
