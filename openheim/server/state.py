"""``ServerState``: what the server's faces share, in a module of its own.

The REST app, the metrics collector and the WebSocket handler all read it; keeping it out of
``app`` (which wires them together) leaves no import cycle between them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio

from openheim.config.model import Config
from openheim.server.auth import Access
from openheim.server.metrics import ServerMetrics
from openheim.server.tenants import Tenants
from openheim.server.worker_metrics import WorkerShare

if TYPE_CHECKING:
    from openheim.mcp.supervisor import McpSupervisor
    from openheim.server.acp_http_connection import HttpConnection, HttpConnections
    from openheim.server.ws import Connection, ConnectionSettings

#: How long shutdown waits for connections to settle their turns and close.
DRAIN_TIMEOUT = 5.0


@attrs.define(eq=False)
class ServerState:
    """What the faces share: immutable config and access rules, the tenants, live sockets."""

    config: Config
    access: Access
    tenants: Tenants
    connection_settings: ConnectionSettings
    metrics: ServerMetrics | None = None
    #: ``[server] metrics_token``, or ``OPENHEIM_METRICS_TOKEN`` (which keeps it out of files).
    metrics_token: str | None = None
    #: The MCP servers shared by every tenant (None without configured servers).
    mcp: McpSupervisor | None = None
    #: What confines tools (``/api/config``): backend, mode, policy.
    sandbox: dict[str, Any] | None = None
    #: This worker's index under ``serve --workers N``; None for a lone server.
    worker: int | None = None
    #: Where the workers share their metrics, so any of them answers ``/metrics`` for all.
    metrics_share: WorkerShare | None = None
    #: ``/acp`` over plain HTTP: its connections outlive the requests that drive them.
    acp_http: HttpConnections | None = None
    #: Open connections of every transport (WebSocket and HTTP).
    connections: set[Connection | HttpConnection] = attrs.field(factory=set)
    closing: bool = False

    async def drain(self) -> None:
        """End every connection after its turns are cancelled and answered (WebSockets close
        with 1001, HTTP connections end their streams)."""
        self.closing = True
        open_now = list(self.connections)
        for connection in open_now:
            connection.shut_down()
        with trio.move_on_after(DRAIN_TIMEOUT):
            for connection in open_now:
                await connection.done.wait()
