"""Skills: markdown files in the skills folder whose text is prepended to the system prompt."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import attrs

from openheim.foundation.errors import SkillError

_SKILL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@attrs.frozen
class Skill:
    name: str
    content: str


def installed_skills(directory: Path) -> list[str]:
    """Sorted names of the installed skills (file stems), empty when the folder is missing."""
    try:
        return sorted(p.stem for p in directory.glob("*.md") if p.is_file())
    except OSError:
        return []


def parse_skill_names(text: str | None) -> tuple[str, ...]:
    """``"a, b,,c"`` → ``("a", "b", "c")``; order is kept, duplicates dropped."""
    if not text:
        return ()
    names = [part.strip() for part in text.split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


def load_skills(directory: Path, names: Iterable[str]) -> list[Skill]:
    """Load the named skills in the given order, or fail naming the installed ones."""
    skills = []
    for name in names:
        # A name is a file stem, never a path: `..` or `/` could read any markdown file.
        path = directory / f"{name}.md"
        if not _SKILL_NAME.match(name) or name.startswith(".") or not path.is_file():
            available = ", ".join(installed_skills(directory)) or "none"
            raise SkillError(
                f"unknown skill {name!r}; installed skills in {directory}: {available}",
                public=f"unknown skill {name!r}; installed skills: {available}",
            )
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SkillError(
                f"cannot read skill {name!r} at {path}: {exc}",
                public=f"cannot read skill {name!r}",
            ) from None
        skills.append(Skill(name, content.strip()))
    return skills
