"""Skills: named bundles of instructions, tools and files, one folder each with a ``SKILL.md``.

The convention coding agents use: ``SKILL.md`` starts with YAML front matter (``name``, ``description``,
and ``allowed-tools`` or ``tools``), and its body is the instructions. Other files in the folder are the
skill's files; the agent reads them with ``read_skill_file`` (by name from the listing: no other path).
A request selects skills with ``available_skills``; ``GET /api/skills`` lists them.

Usage::

    library = SkillLibrary(Path("skills"))        # SAGE_SKILLS_DIR
    chosen = library.select(["pdf-report"])       # UnknownSkills names the ones there are
    prompt = skills_prompt(chosen)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sage_platform.agent.tools import Tool, ToolContext

MAX_FILES = 200
MAX_FILE_CHARS = 50_000


class UnknownSkills(ValueError):
    pass


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    instructions: str
    tools: tuple[str, ...]
    files: tuple[str, ...]  # relative POSIX paths
    folder: Path

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "tools": list(self.tools),
                "files": list(self.files)}  # fmt: skip


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    _, head, body = (text.split("---", 2) + ["", ""])[:3]
    data = yaml.safe_load(head) or {}
    return (data if isinstance(data, dict) else {}), body.strip()


def _tool_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(n.strip() for n in value.replace(",", " ").split() if n.strip())
    return tuple(str(n) for n in value or ())


def load_skill(folder: Path) -> Skill:
    meta, body = _front_matter((folder / "SKILL.md").read_text(encoding="utf-8"))
    files = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file()
        and not p.is_symlink()  # a link could point out of the skill folder
        and p.name != "SKILL.md"
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )[:MAX_FILES]
    return Skill(
        name=str(meta.get("name") or folder.name),
        description=str(meta.get("description") or "").strip(),
        instructions=body,
        tools=_tool_names(meta.get("allowed-tools", meta.get("tools"))),
        files=tuple(files),
        folder=folder,
    )


class SkillLibrary:
    """The skills of a folder, read when asked for (a changed folder needs no restart)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def skills(self) -> dict[str, Skill]:
        if self.folder is None or not self.folder.is_dir():
            return {}
        found = [load_skill(d) for d in sorted(self.folder.iterdir()) if (d / "SKILL.md").is_file()]
        return {s.name: s for s in found}

    def select(self, names: list[str]) -> list[Skill]:
        skills = self.skills()
        unknown = [n for n in names if n not in skills]
        if unknown:
            where = f"in {self.folder}" if self.folder else "(SAGE_SKILLS_DIR is not set)"
            raise UnknownSkills(
                f"unknown skills: {', '.join(unknown)} {where}; available: {', '.join(sorted(skills)) or 'none'}"
            )
        return [skills[n] for n in names]


def skills_prompt(skills: list[Skill]) -> str:
    parts = []
    for skill in skills:
        files = f"\nFiles (read them with read_skill_file): {', '.join(skill.files)}" if skill.files else ""
        parts.append(f"## Skill: {skill.name}\n{skill.description}\n\n{skill.instructions}{files}")
    return "You have these skills:\n\n" + "\n\n".join(parts) if parts else ""


def read_skill_file_tool(skills: list[Skill]) -> Tool:
    """Reads a listed file of a selected skill; any other name (``..``, absolute paths) is refused."""
    by_name = {s.name: s for s in skills}

    async def call(arguments: dict[str, Any], _: ToolContext) -> str:
        skill = by_name.get(str(arguments.get("skill")))
        if skill is None:
            raise ValueError(f"no selected skill {arguments.get('skill')!r}; selected: {', '.join(by_name)}")
        name = str(arguments.get("file"))
        if name not in skill.files:
            raise ValueError(f"skill {skill.name} has no file {name!r}; its files: {', '.join(skill.files)}")
        text = await asyncio.to_thread((skill.folder / name).read_text, encoding="utf-8", errors="replace")
        return text[:MAX_FILE_CHARS]

    parameters = {
        "type": "object",
        "properties": {"skill": {"type": "string"}, "file": {"type": "string", "description": "A listed file."}},
        "required": ["skill", "file"],
        "additionalProperties": False,
    }
    return Tool("read_skill_file", "Read one of a selected skill's files.", parameters, call, source="skills")
