"""What a line typed at the REPL means: a prompt for the model, a slash command, or nothing.

Pure functions of text, so the rules (``//`` escapes a slash, a trailing ``\\`` continues the
line) are tested without a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

#: Name → (argument, what it does); the order is the order ``/help`` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("", "show this help"),
    "model": ("[SPEC]", "show the current and available models, or switch to SPEC"),
    "skills": ("", "list installed skills and the ones this session uses"),
    "new": ("", "start a fresh conversation with the same model and skills"),
    "resume": ("ID", "continue a stored conversation (an id prefix is enough)"),
    "sessions": ("", "list recent conversations"),
    "mcp": ("", "list MCP servers: state, tools, errors and where their logs are"),
    "compact": ("", "compact the conversation now: summarise older turns to free context"),
    "exit": ("", "leave (Ctrl-D does too)"),
}

ALIASES = {"quit": "exit", "q": "exit", "h": "help", "?": "help"}

KEYS = (
    ("Enter", "send the prompt"),
    ("Esc Enter / Alt-Enter", "insert a newline (multi-line prompt)"),
    ("\\ at the end of a line", "continue on the next line (also when input is piped)"),
    ("Ctrl-C", "while the agent works: cancel the turn; at the prompt: clear the line"),
    ("Ctrl-D", "on an empty line: exit"),
    ("Up / Down, Ctrl-R", "history (kept in $OPENHEIM_HOME/repl_history)"),
    ("//text", "send a prompt that starts with a slash"),
)


@attrs.frozen
class Prompt:
    text: str


@attrs.frozen
class Command:
    name: str
    argument: str = ""


@attrs.frozen
class UnknownCommand:
    name: str


@attrs.frozen
class Blank:
    pass


Line = Prompt | Command | UnknownCommand | Blank


def parse_line(text: str) -> Line:
    """``/name arg`` is a command, ``//x`` the prompt ``/x``, a blank line nothing."""
    stripped = text.strip()
    if not stripped:
        return Blank()
    if stripped.startswith("//"):
        return Prompt(stripped[1:])
    if not stripped.startswith("/"):
        return Prompt(stripped)
    name, _, argument = stripped[1:].partition(" ")
    name = ALIASES.get(name.lower(), name.lower())
    if name not in COMMANDS:
        return UnknownCommand(name)
    return Command(name, argument.strip())


def continues(line: str) -> tuple[str, bool]:
    """A line ending in ``\\`` goes on: returns the line without it, and whether it goes on."""
    if line.endswith("\\") and not line.endswith("\\\\"):
        return line[:-1], True
    return line, False


def help_text() -> str:
    width = max(len(f"/{name} {arg}".strip()) for name, (arg, _) in COMMANDS.items())
    lines = ["Commands:"]
    for name, (arg, what) in COMMANDS.items():
        lines.append(f"  {f'/{name} {arg}'.strip():<{width}}  {what}")
    key_width = max(len(key) for key, _ in KEYS)
    lines.append("Keys:")
    lines.extend(f"  {key:<{key_width}}  {what}" for key, what in KEYS)
    return "\n".join(lines)


def mcp_lines(rows: Sequence[Mapping[str, Any]], config_file: str) -> list[str]:
    """``/mcp``: one block per server, from ``McpSupervisor.describe()`` rows."""
    if not rows:
        return [
            f"no MCP servers (add [mcp_servers.NAME] to {config_file}, or run openheim mcp import)"
        ]
    lines = []
    for row in rows:
        where = row.get("command") or row.get("url") or ""
        state = row["state"]
        if state == "connected":
            state = f"connected, {row['tool_count']} tools"
        restarts = f", {row['restarts']} restarts" if row.get("restarts") else ""
        lines.append(f"{row['name']} ({row['transport']}: {where}): {state}{restarts}")
        if row.get("error"):
            lines.append(f"  error: {row['error']}")
        if row.get("tools"):
            lines.append(f"  tools: {', '.join(row['tools'])}")
        if row.get("log"):
            lines.append(f"  log: {row['log']}")
    return lines
