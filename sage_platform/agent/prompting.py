"""The system prompt of a run: prefix, the agent's prompt, context, workflows, skills, summary.

Usage::

    system = system_prompt(request, config, agent=None, skills=[], summary=None)
"""

from __future__ import annotations

import json
from typing import Any

from sage_platform.agent.profiles import RunningConfig
from sage_platform.agent.requests import StreamRequest, SubAgentSpec
from sage_platform.agent.skills import Skill, skills_prompt

SYSTEM_PROMPT = (
    "You are Sage, an assistant with tools. Use knowledge_search for questions about the knowledge "
    "bases and cite the doc_id of each passage you use in square brackets. Use remember for lasting "
    "facts about the user, and recall to look them up. Answer concisely."
)
SUMMARY_PROMPT = (
    "Summarise the earlier conversation below for your own later use: keep facts, decisions, names, "
    "numbers and open questions; drop pleasantries. At most 200 words."
)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def system_prompt(
    request: StreamRequest,
    config: RunningConfig,
    *,
    agent: SubAgentSpec | None,
    skills: list[Skill],
    summary: str | None,
) -> str:
    parts = [request.system_prefix or "", (agent.system_prompt if agent and agent.system_prompt else SYSTEM_PROMPT)]
    context = {**config.system_context, **(request.system_context or {})}  # the request's win
    if context:
        parts.append("Context:\n" + "\n".join(f"- {k}: {_value(v)}" for k, v in context.items()))
    if config.workflows:
        parts.append("Workflows you know:\n" + "\n".join(f"- {k}: {_value(v)}" for k, v in config.workflows.items()))
    parts.append(skills_prompt(skills))
    if summary:
        parts.append(f"Summary of the earlier conversation:\n{summary}")
    return "\n\n".join(p for p in parts if p)
