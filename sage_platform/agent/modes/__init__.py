"""Agent modes, all on ``sage_platform.agent.engine``: ``simple`` (one loop), ``multi`` (analyse, plan, run
each step, summarise; ``fibre`` is the original's name), ``team`` (a lead delegates to sub-agents).

Usage::

    await MODES[request.mode](ctx, lead, messages)
"""

from __future__ import annotations

from sage_platform.agent.engine import ModeBody
from sage_platform.agent.modes.multi_step import run_multi_step
from sage_platform.agent.modes.simple import run_simple
from sage_platform.agent.modes.team import run_team

MODES: dict[str, ModeBody] = {"simple": run_simple, "multi": run_multi_step, "team": run_team}

__all__ = ["MODES"]
