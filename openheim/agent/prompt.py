"""The system prompt: the base instructions, then each skill in order."""

from __future__ import annotations

from collections.abc import Sequence

from openheim.skills import Skill

BASE_PROMPT = """\
You are openheim, an agent that completes tasks by calling tools. Work in small, verifiable \
steps: inspect before you change, run commands to check your work, and answer concisely when \
the task is done. The working directory is {cwd}."""


def build_system_prompt(
    *, cwd: str, skills: Sequence[Skill] = (), override: str | None = None
) -> str:
    base = override if override is not None else BASE_PROMPT.format(cwd=cwd)
    sections = [base.strip()] if base.strip() else []
    sections += [f"## Skill: {skill.name}\n\n{skill.content}" for skill in skills]
    return "\n\n---\n\n".join(sections)
