"""``simple``: one tool-calling loop until the model answers (a thinking step first with ``deep_thinking``).

Usage::

    await run_simple(ctx, lead, messages)
"""

from __future__ import annotations

from typing import Any

from sage_platform.agent.engine import Member, RunContext


async def run_simple(ctx: RunContext, lead: Member, messages: list[dict[str, Any]]) -> None:
    await ctx.think(lead, messages)
    await ctx.tool_loop(lead, messages)
