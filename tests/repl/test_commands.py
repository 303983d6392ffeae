"""What a typed line means, without a terminal."""

from __future__ import annotations

from openheim.repl.commands import (
    COMMANDS,
    Blank,
    Command,
    Prompt,
    UnknownCommand,
    continues,
    help_text,
    parse_line,
)


def test_lines_are_prompts_commands_or_nothing() -> None:
    assert parse_line("  ") == Blank()
    assert parse_line(" explain this \n") == Prompt("explain this")
    assert parse_line("two\n  lines") == Prompt("two\n  lines")
    assert parse_line("/help") == Command("help")
    assert parse_line("/MODEL  openai/gpt-4o ") == Command("model", "openai/gpt-4o")
    assert parse_line("/quit") == Command("exit")
    assert parse_line("/frobnicate x") == UnknownCommand("frobnicate")
    assert parse_line("//etc/hosts: what is it?") == Prompt("/etc/hosts: what is it?")


def test_a_trailing_backslash_continues() -> None:
    assert continues("first \\") == ("first ", True)
    assert continues("done") == ("done", False)
    assert continues("a literal \\\\") == ("a literal \\\\", False)


def test_help_names_every_command_and_the_multi_line_keys() -> None:
    text = help_text()
    assert all(f"/{name}" in text for name in COMMANDS)
    assert "Esc Enter" in text and "\\ at the end of a line" in text
