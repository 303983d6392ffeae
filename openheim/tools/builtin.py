"""The tools every session gets unless configured otherwise."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from openheim.tools.base import Tool, ToolKind, kind_of
from openheim.tools.edit import EditFileTool
from openheim.tools.files import ReadFileTool, WriteFileTool
from openheim.tools.grep import GrepTool
from openheim.tools.listing import GlobTool, ListDirTool
from openheim.tools.plan import UpdatePlanTool
from openheim.tools.shell import ExecuteCommandTool
from openheim.tools.web import WebFetchTool


def builtin_tools(
    *,
    command_timeout: float = 120.0,
    output_limit: int = 64 * 1024,
    read_limit: int = 256 * 1024,
    web_fetch: bool = True,
) -> list[Tool]:
    """Fresh instances of ``execute_command``, ``read_file``, ``write_file``, ``edit_file``,
    ``list_dir``, ``glob``, ``grep``, (when ``web_fetch``) ``web_fetch``, and ``update_plan``.

    ``command_timeout`` is the shell's default timeout; the model may ask for up to
    ``max(600, command_timeout)`` seconds per call. ``web_fetch`` is False where the session
    must not reach the network itself (``[sandbox] network = false``, a tenant by default).
    """
    tools: list[Tool] = [
        ExecuteCommandTool(
            default_timeout=command_timeout,
            max_timeout=max(600.0, command_timeout),
            output_limit=output_limit,
        ),
        ReadFileTool(max_bytes=read_limit),
        WriteFileTool(),
        EditFileTool(),
        ListDirTool(),
        GlobTool(),
        GrepTool(),
    ]
    if web_fetch:
        tools.append(WebFetchTool(output_limit=output_limit))
    tools.append(UpdatePlanTool())
    return tools


@functools.cache
def builtin_kinds() -> Mapping[str, ToolKind]:
    """Each built-in tool's name and the kind it declares (for faces that have only a name)."""
    return {tool.definition.name: kind_of(tool) for tool in builtin_tools()}
