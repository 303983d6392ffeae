"""ACP slash commands: what a session offers in ``available_commands_update``, and which
prompts name one of them. Pure; ``acp.slash`` carries the commands out.

Clients send a command as prompt text (``/model openai/gpt-5``). Only the names offered here
are commands: any other text that starts with a slash (a path, say) is a prompt for the
model.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import attrs

#: Name → (what it does, the hint for its argument or None), in the order clients list them.
BUILTIN: dict[str, tuple[str, str | None]] = {
    "model": ("Show the available models, or switch to one", "provider/model"),
    "mode": ("Show or switch the permission mode: ask, code or auto", "ask | code | auto"),
    "thinking": (
        "Show or set how hard the model thinks: off, low, medium or high",
        "off | low | medium | high",
    ),
    "skills": ("List the installed skills and the ones this session uses", None),
    "compact": ("Make the conversation smaller for the model now (history keeps all)", None),
}


@attrs.frozen
class CommandLine:
    """A prompt that names a command: the name without its slash, and the rest of the text."""

    name: str
    argument: str = ""


def _entry(name: str, description: str, hint: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "description": description}
    if hint is not None:
        entry["input"] = {"hint": hint}
    return entry


def available_commands(skills: Iterable[str]) -> list[dict[str, Any]]:
    """The commands a session offers: the built-ins, then one per installed skill (a skill
    named like a built-in is left out: the built-in wins)."""
    commands = [_entry(name, text, hint) for name, (text, hint) in BUILTIN.items()]
    commands += [
        _entry(
            skill,
            f"Use the {skill} skill in this session (its text joins the system prompt)",
            "optional prompt to send with it",
        )
        for skill in skills
        if skill not in BUILTIN
    ]
    return commands


def update(commands: list[dict[str, Any]]) -> dict[str, Any]:
    return {"sessionUpdate": "available_commands_update", "availableCommands": commands}


def parse_command(text: str, skills: Collection[str]) -> CommandLine | None:
    """The command ``text`` names, or None when it is a prompt for the model."""
    stripped = text.strip()
    if not stripped.startswith("/") or stripped[1:2].isspace():
        return None
    parts = stripped[1:].split(maxsplit=1)
    if not parts or (parts[0] not in BUILTIN and parts[0] not in skills):
        return None
    return CommandLine(parts[0], parts[1] if len(parts) > 1 else "")
