"""The built-in tool set."""

from __future__ import annotations

from openheim.tools.base import Tool, ToolRegistry
from openheim.tools.builtin import builtin_tools
from openheim.tools.files import ReadFileTool
from openheim.tools.shell import ExecuteCommandTool


def test_builtin_tools_are_the_nine_and_register() -> None:
    tools = builtin_tools(command_timeout=5, output_limit=100, read_limit=200)
    assert all(isinstance(tool, Tool) for tool in tools)
    registry = ToolRegistry(tools)
    assert registry.names() == [
        "execute_command",
        "read_file",
        "write_file",
        "edit_file",
        "list_dir",
        "glob",
        "grep",
        "web_fetch",
        "update_plan",
    ]
    assert "web_fetch" not in ToolRegistry(builtin_tools(web_fetch=False))
    shell = registry.get("execute_command")
    assert isinstance(shell, ExecuteCommandTool)
    assert (shell.default_timeout, shell.output_limit) == (5, 100)
    reader = registry.get("read_file")
    assert isinstance(reader, ReadFileTool)
    assert reader.max_bytes == 200


def test_builtin_tools_are_fresh_instances() -> None:
    first, second = builtin_tools(), builtin_tools()
    assert all(a is not b for a, b in zip(first, second, strict=True))


def test_cap_output_keeps_text_under_the_limit_and_notes_the_rest() -> None:
    from openheim.tools.base import cap_output

    assert cap_output("short", 10) == "short"
    capped = cap_output("é" * 10, 5)  # 20 bytes; a character is never split
    assert capped == "éé\n[... output truncated: 16 more bytes]"
