"""The doctor's MCP rows: every enabled server started as ``run`` would, until it connects
or fails, then stopped. Their stderr goes to the usual log files, so a failure points there."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import trio

from openheim.config.model import Config, McpServerConfig
from openheim.config.paths import Paths
from openheim.doctor.rows import Row, Status, plural
from openheim.foundation.redact import strip_url_credentials

if TYPE_CHECKING:
    from openheim.mcp.actor import McpServerActor

#: Extra time granted over ``startup_timeout_secs`` for spawning the process itself.
MCP_SLACK_SECS = 5.0


async def check_mcp_servers(config: Config, paths: Paths) -> list[Row]:
    """One row per server, in config order; disabled ones are skipped, not started."""
    servers = list(config.mcp_servers.values())
    results: dict[str, Row] = {}
    for server in servers:
        if not server.enabled:
            detail = "disabled (`enabled = false`); not started"
            results[server.name] = Row("mcp", server.name, Status.SKIP, detail)
    enabled = [server for server in servers if server.enabled]
    if enabled:
        from openheim.mcp.supervisor import open_mcp_supervisor

        started = trio.current_time()
        async with (
            open_mcp_supervisor(enabled, log_dir=paths.logs_dir) as supervisor,
            trio.open_nursery() as nursery,
        ):
            for actor in supervisor.actors.values():
                nursery.start_soon(_settle, actor, started, results)
    return [results[server.name] for server in servers]


async def _settle(actor: McpServerActor, started: float, results: dict[str, Row]) -> None:
    from openheim.mcp.actor import ServerState

    server = actor.config
    limit = server.startup_timeout_secs + MCP_SLACK_SECS
    status = None
    with trio.move_on_after(limit):
        status = await actor.wait_settled()
    elapsed = trio.current_time() - started
    where = (
        f"http: {strip_url_credentials(server.url)}" if server.url else f"stdio: {server.command}"
    )
    data: dict[str, object] = {"transport": server.transport, "elapsed_ms": round(elapsed * 1000)}
    if actor.log_path is not None and server.transport == "stdio":
        data["log"] = str(actor.log_path)
    if status is not None and status.state is ServerState.CONNECTED:
        data |= {"tool_count": status.tool_count, "tools": [t.name for t in actor.tools]}
        detail = f"connected in {elapsed:.1f} s, {plural(status.tool_count, 'tool')} ({where})"
        results[server.name] = Row("mcp", server.name, Status.OK, detail, data=data)
        return
    error = status.error if status is not None else f"did not start within {limit:g} s"
    detail = f"failed: {error} ({where})"
    results[server.name] = Row(
        "mcp", server.name, Status.FAIL, detail, _mcp_fix(server, error, actor.log_path), data=data
    )


def _mcp_fix(server: McpServerConfig, error: str | None, log_path: Path | None) -> str:
    table = f"[mcp_servers.{server.name}]"
    log_hint = f"; its stderr is in {log_path}" if log_path and server.transport == "stdio" else ""
    error = error or ""
    if error.startswith("command not found"):
        return f"install {server.command} or correct `command` in {table}"
    if "did not start within" in error:
        return f"raise `startup_timeout_secs` in {table} or find why it hangs{log_hint}"
    if server.transport == "http":
        return f"check `url` and `headers` in {table} and that the server runs"
    return f"run the command of {table} by hand to see why it stops{log_hint}"
