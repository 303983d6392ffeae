"""Updates that are neither the answer nor a tool call: the wait for MCP servers, and a
compaction of the conversation. Pure: events in, ``session/update`` payloads out."""

from __future__ import annotations

from typing import Any

from openheim.agent.events import Compacted, McpStartup


def compaction_notice(event: Compacted) -> dict[str, Any]:
    """A compaction as a thought chunk: every client shows it beside the answer, never in
    it; ``_meta`` carries the figures for clients that want them as data. (ACP's own
    ``compaction_update`` is unstable, not in v1.)"""
    compaction = {
        "method": event.method,
        "tokensBefore": event.tokens_before,
        "tokensAfter": event.tokens_after,
    }
    return {
        "sessionUpdate": "agent_thought_chunk",
        "content": {"type": "text", "text": f"[{event.describe()}]\n"},
        "_meta": {"openheim.dev": {"compaction": compaction}},
    }


def mcp_startup_plan(event: McpStartup) -> dict[str, Any]:
    """The wait for MCP servers as a ``plan``: one entry per server, ``in_progress`` while it
    starts and ``completed`` with its outcome in the text once it is ready or has failed.

    A plan is the one stable update a client shows as progress that is neither the answer
    nor a tool call; ``_meta`` carries the same state for clients that want it as data.
    """
    entries = []
    for server in event.servers:
        if server.state == "starting":
            content, status = f"Start MCP server {server.name}", "in_progress"
        elif server.state == "ready":
            content, status = (
                f"MCP server {server.name}: ready ({server.tool_count} tools)",
                "completed",
            )
        else:
            content, status = f"MCP server {server.name} failed: {server.error}", "completed"
        entries.append({"content": content, "priority": "medium", "status": status})
    state = [
        {"name": s.name, "state": s.state, "toolCount": s.tool_count}
        | ({"error": s.error} if s.error else {})
        for s in event.servers
    ]
    return {
        "sessionUpdate": "plan",
        "entries": entries,
        "_meta": {"openheim.dev": {"mcpStartup": state}},
    }
