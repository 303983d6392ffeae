"""The tools every session gets unless configured otherwise."""

from __future__ import annotations

from openheim.tools.base import Tool
from openheim.tools.files import ReadFileTool, WriteFileTool
from openheim.tools.shell import ExecuteCommandTool


def builtin_tools(
    *,
    command_timeout: float = 120.0,
    output_limit: int = 64 * 1024,
    read_limit: int = 256 * 1024,
) -> list[Tool]:
    """Fresh instances of ``execute_command``, ``read_file`` and ``write_file``.

    ``command_timeout`` is the shell's default timeout; the model may ask for up to
    ``max(600, command_timeout)`` seconds per call.
    """
    return [
        ExecuteCommandTool(
            default_timeout=command_timeout,
            max_timeout=max(600.0, command_timeout),
            output_limit=output_limit,
        ),
        ReadFileTool(max_bytes=read_limit),
        WriteFileTool(),
    ]
