"""Starts one actor per enabled MCP server in the background and offers their tools."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from openheim.config.model import McpServerConfig
from openheim.foundation.concurrency import open_service_nursery
from openheim.foundation.redact import strip_url_credentials
from openheim.mcp.actor import McpServerActor, ServerState, ServerStatus
from openheim.mcp.tools import (
    DEFAULT_OUTPUT_LIMIT,
    SEPARATOR,
    PendingMcpTool,
    sanitize,
    tools_of,
)
from openheim.sandbox.sandbox import Sandbox
from openheim.tools.base import Tool


class McpSupervisor:
    """The actors of one runtime. Servers start in the background: a slow or broken one
    neither blocks the others nor the first prompt."""

    def __init__(
        self, actors: Iterable[McpServerActor], output_limit: int = DEFAULT_OUTPUT_LIMIT
    ) -> None:
        self.actors: dict[str, McpServerActor] = {actor.name: actor for actor in actors}
        self.output_limit = output_limit
        #: Servers a startup wait gave up on: no later turn waits for them again.
        self._given_up: set[str] = set()

    def first_starts(self) -> list[McpServerActor]:
        """Servers still on their first start that no wait has given up on."""
        return [
            actor
            for actor in self.actors.values()
            if not actor.first_settled.is_set() and actor.name not in self._given_up
        ]

    def give_up(self, actor: McpServerActor) -> None:
        """A wait timed out on ``actor``: it goes on starting in the background, unwaited."""
        self._given_up.add(actor.name)

    def statuses(self) -> Mapping[str, ServerStatus]:
        return {name: actor.status for name, actor in self.actors.items()}

    def describe(self) -> list[dict[str, Any]]:
        """Live state per server, for ``/api/mcp-servers``, the REPL's ``/mcp`` and ACP."""
        return [describe_actor(self.actors[name]) for name in sorted(self.actors)]

    def tools(self) -> list[Tool]:
        """The tools of every connected server, as of now."""
        limit = self.output_limit
        return [tool for actor in self.actors.values() for tool in tools_of(actor, limit)]

    def find(self, name: str) -> Tool | None:
        """A tool by exposed name; one of a server not connected yet waits for it when called."""
        for actor in self.actors.values():
            if not name.startswith(sanitize(actor.name) + SEPARATOR):
                continue
            if actor.status.state is not ServerState.CONNECTED:
                # Waits for a starting server; a failed one answers why it is unavailable.
                return PendingMcpTool(actor, name, self.output_limit)
            for tool in tools_of(actor, self.output_limit):
                if tool.definition.name == name:
                    return tool
        return None


@asynccontextmanager
async def open_mcp_supervisor(
    servers: Iterable[McpServerConfig],
    *,
    errlog: TextIO | None = None,
    log_dir: Path | None = None,
    backoff_initial: float = 1.0,
    backoff_max: float = 60.0,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    sandbox: Sandbox | None = None,
) -> AsyncIterator[McpSupervisor]:
    """Run the actors for as long as the body; leaving stops every server process.

    A stdio server's stderr goes to ``errlog``, or else to ``log_dir/mcp-NAME.log``, or else
    to ours. With a ``sandbox`` (a tenant's servers), stdio servers run inside it; without one
    they run as configured (the operator's own servers are trusted).
    """
    actors = [
        McpServerActor(
            config,
            errlog=errlog,
            log_path=log_dir / f"mcp-{sanitize(config.name)}.log" if log_dir else None,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            sandbox=sandbox,
        )
        for config in servers
        if config.enabled
    ]
    async with open_service_nursery() as nursery:
        for actor in actors:
            nursery.start_soon(actor.run, name=f"mcp:{actor.name}")
        yield McpSupervisor(actors, output_limit)


def describe_actor(actor: McpServerActor) -> dict[str, Any]:
    """No secrets: env and headers stay out; a URL loses any credentials."""
    config, status = actor.config, actor.status
    row: dict[str, Any] = {"name": actor.name, "transport": config.transport}
    if config.command:
        row["command"] = config.command
    if config.url:
        row["url"] = strip_url_credentials(config.url)
    row |= {
        "state": status.state.value,
        "connected": status.state is ServerState.CONNECTED,
        "tool_count": status.tool_count,
        "tools": [tool.definition.name for tool in tools_of(actor)],
        "restarts": actor.restarts,
    }
    if status.error:
        row["error"] = status.error
    if actor.log_path is not None and config.transport == "stdio":
        row["log"] = str(actor.log_path)
    return row
