"""The test MCP server (``server_app.py``): configs for stdio, and a process for HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from openheim.config.model import McpServerConfig
from openheim.mcp.actor import McpServerActor, ServerState
from tests.e2e.conftest import home  # noqa: F401 (the e2e fixture, for test_run_e2e)

SERVER_APP = Path(__file__).with_name("server_app.py")


def server_config(name: str = "test", **options: object) -> McpServerConfig:
    defaults: dict[str, object] = {"startup_timeout_secs": 20.0, "tool_timeout_secs": 10.0}
    return McpServerConfig(
        name=name,
        command=sys.executable,
        args=(str(SERVER_APP),),
        **(defaults | options),  # type: ignore[arg-type]
    )


async def wait_for(actor: McpServerActor, state: ServerState, *, connections: int = 0) -> None:
    """Wait until ``actor`` is in ``state``, after at least ``connections`` connects.

    Waits on the actor's change event (renewed on every status change) rather than polling.
    """
    while actor.status.state is not state or actor.connections < connections:
        await actor._changed.wait()


@attrs.define
class HttpServer:
    """``server_app.py --http`` as a real process; ``kill`` and ``start`` keep its port."""

    port: int = 0
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER_APP), "--http", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("PORT "), f"server_app --http said {line!r}"
        self.port = int(line.split()[1])

    def kill(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()
