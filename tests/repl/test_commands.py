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
    mcp_lines,
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


def test_mcp_lines_show_state_tools_errors_and_logs() -> None:
    rows = [
        {
            "name": "files",
            "transport": "stdio",
            "command": "npx",
            "state": "connected",
            "tool_count": 2,
            "tools": ["files__read", "files__list"],
            "restarts": 1,
            "log": "/h/logs/mcp-files.log",
        },
        {
            "name": "web",
            "transport": "http",
            "url": "http://127.0.0.1:9/mcp",
            "state": "failed",
            "tool_count": 0,
            "tools": [],
            "restarts": 0,
            "error": "ConnectError: refused",
        },
    ]
    assert mcp_lines(rows, "/h/config.toml") == [
        "files (stdio: npx): connected, 2 tools, 1 restarts",
        "  tools: files__read, files__list",
        "  log: /h/logs/mcp-files.log",
        "web (http: http://127.0.0.1:9/mcp): failed",
        "  error: ConnectError: refused",
    ]
    assert mcp_lines([], "/h/config.toml") == [
        "no MCP servers (add [mcp_servers.NAME] to /h/config.toml, or run openheim mcp import)"
    ]


def test_compact_is_a_command() -> None:
    assert parse_line("/compact") == Command("compact")
