"""MCP tools as our ``Tool``: named ``{server}__{tool}``, results mapped to text for the model."""

from __future__ import annotations

import re
from typing import Any

import attrs
import trio

from openheim.foundation.models import ToolDefinition, ToolResult
from openheim.mcp.actor import McpServerActor, McpToolInfo, ServerState
from openheim.tools.base import ToolContext, cap_output

SEPARATOR = "__"
#: Same default as the built-in tools' per-stream cap.
DEFAULT_OUTPUT_LIMIT = 64 * 1024


def sanitize(name: str) -> str:
    """Provider tool names allow ``[A-Za-z0-9_-]``; keep it to ``[A-Za-z0-9_]`` to be safe."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def tool_name(server: str, tool: str) -> str:
    return f"{sanitize(server)}{SEPARATOR}{sanitize(tool)}"


@attrs.frozen
class McpTool:
    """One tool of one server; calls go through the server's actor."""

    actor: McpServerActor
    info: McpToolInfo
    output_limit: int = DEFAULT_OUTPUT_LIMIT

    @property
    def definition(self) -> ToolDefinition:
        parameters = dict(self.info.input_schema) or {"type": "object", "properties": {}}
        return ToolDefinition(
            name=tool_name(self.actor.name, self.info.name),
            description=self.info.description or f"{self.info.name} (MCP {self.actor.name})",
            parameters=parameters,
        )

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        result = await self.actor.call(self.info.name, arguments)
        return attrs.evolve(result, content=cap_output(result.content, self.output_limit))


@attrs.frozen
class PendingMcpTool:
    """A call to a server that is still starting: wait for it (up to its startup timeout),
    so a prompt sent right after start-up can use its tools."""

    actor: McpServerActor
    name: str
    output_limit: int = DEFAULT_OUTPUT_LIMIT

    @property
    def definition(self) -> ToolDefinition:
        return ToolDefinition(name=self.name, description=f"a tool of MCP {self.actor.name}")

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        with trio.move_on_after(self.actor.config.startup_timeout_secs):
            await self.actor.wait_settled()
        status = self.actor.status
        if status.state is ServerState.CONNECTED:
            for tool in tools_of(self.actor, self.output_limit):
                if tool.definition.name == self.name:
                    return await tool.call(arguments, context)
            return ToolResult(f"MCP server {self.actor.name!r} has no tool {self.name!r}", True)
        return await self.actor.call(self.name, arguments)  # answers why it is unavailable


def tools_of(actor: McpServerActor, output_limit: int = DEFAULT_OUTPUT_LIMIT) -> list[McpTool]:
    if actor.status.state is not ServerState.CONNECTED:
        return []
    return [McpTool(actor, info, output_limit) for info in actor.tools]
