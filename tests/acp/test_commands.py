"""Which prompt texts are slash commands: only the names a session offers."""

from __future__ import annotations

import pytest

from openheim.acp.commands import CommandLine, available_commands, parse_command

SKILLS = ("rust", "py.typing")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/model", CommandLine("model")),
        ("  /model   openai/gpt-5  ", CommandLine("model", "openai/gpt-5")),
        ("/mode\nask", CommandLine("mode", "ask")),
        ("/rust explain\nthis code", CommandLine("rust", "explain\nthis code")),
        ("/py.typing", CommandLine("py.typing")),
        ("/etc/hosts is where?", None),
        ("/Model", None),  # names are exact
        ("/", None),
        ("/ model", None),
        ("model", None),
        ("tell me about /model", None),
    ],
)
def test_only_offered_names_are_commands(text: str, expected: CommandLine | None) -> None:
    assert parse_command(text, SKILLS) == expected


def test_a_skill_named_like_a_builtin_is_not_offered_twice() -> None:
    names = [command["name"] for command in available_commands(["mode", "rust"])]
    assert names == ["model", "mode", "thinking", "skills", "compact", "rust"]
