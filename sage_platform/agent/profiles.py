"""Agent definitions and the preset running configuration (the original's ``agent_setting.json``).

The file gives ``system_context`` (facts added to every system prompt), ``workflows`` (named procedures
the agent is told about) and agents: ``sub_agents`` (or ``agents``), as a list or a name → definition map.
An agent definition serves as a team member (``available_sub_agent_ids``) or, named by ``agent_id``, as
the agent a request talks to. Admins add more through ``/api/agents``; those live until the server stops.

Usage::

    config = RunningConfig.load(Path("agent_setting.json"))   # ValueError says what is wrong
    agents = AgentRegistry(config.agents)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sage_platform.agent.requests import SubAgentSpec


class UnknownAgents(ValueError):
    pass


@dataclass
class RunningConfig:
    system_context: dict[str, Any] = field(default_factory=dict)
    workflows: dict[str, Any] = field(default_factory=dict)
    agents: dict[str, SubAgentSpec] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> RunningConfig:
        if not path.is_file():
            raise ValueError(f"{path}: no such file (SAGE_PRESET_RUNNING_CONFIG_PATH / --preset_running_config)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object with system_context, workflows, sub_agents")
        listed: Any = next((data[k] for k in ("sub_agents", "subAgents", "agents") if k in data), [])
        entries = [{"name": n, **d} for n, d in listed.items()] if isinstance(listed, dict) else listed
        try:
            agents = [SubAgentSpec.model_validate(entry) for entry in entries]
        except ValidationError as error:
            raise ValueError(f"{path}: a sub-agent is not valid: {error}") from error
        context, workflows = data.get("system_context") or {}, data.get("workflows") or {}
        if not isinstance(context, dict):
            raise ValueError(f"{path}: system_context must be an object")
        if isinstance(workflows, list):
            workflows = {str(w.get("name", i)): w for i, w in enumerate(workflows) if isinstance(w, dict)}
        return cls(context, workflows, {a.name: a for a in agents})


class AgentRegistry:
    def __init__(self, agents: dict[str, SubAgentSpec] | None = None) -> None:
        self.agents: dict[str, SubAgentSpec] = dict(agents or {})

    def add(self, spec: SubAgentSpec) -> SubAgentSpec:
        self.agents[spec.name] = spec
        return spec

    def remove(self, name: str) -> None:
        self.get([name])
        del self.agents[name]

    def get(self, names: list[str]) -> list[SubAgentSpec]:
        unknown = [n for n in names if n not in self.agents]
        if unknown:
            raise UnknownAgents(
                f"unknown agents: {', '.join(unknown)}; defined: {', '.join(sorted(self.agents)) or 'none'} "
                "(agent_setting.json or POST /api/agents)"
            )
        return [self.agents[n] for n in names]
