"""A real MCP server for the tests, run as a subprocess over stdio."""

from __future__ import annotations

import os
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("openheim-test")


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo: {text}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def sleep(seconds: float) -> str:
    """Sleep, to test timeouts and cancellation."""
    time.sleep(seconds)
    return "slept"


@server.tool()
def crash() -> str:
    """Exit the process mid-call, as a crashing server would."""
    os._exit(3)


@server.tool()
def fail() -> str:
    """Raise, so the call comes back with is_error."""
    raise RuntimeError("deliberate failure")


@server.tool()
def pid() -> int:
    """The server's process id, so tests can check it is gone."""
    return os.getpid()


if __name__ == "__main__":
    server.run()
