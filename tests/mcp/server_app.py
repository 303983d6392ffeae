"""A real MCP server for the tests, run as a subprocess: over stdio, or with ``--http`` over
Streamable HTTP on 127.0.0.1 (it prints ``PORT <n>`` once it listens)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer

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


@server.tool()
def child() -> int:
    """Start a long ``sleep`` child and return its pid: it must not outlive openheim."""
    import subprocess

    return subprocess.Popen(["sleep", "300"]).pid


@server.tool()
async def wait(seconds: float, marker: str) -> str:
    """Sleep without blocking; writes ``marker`` if the client cancels the call."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        Path(marker).write_text("cancelled")
        raise
    return "waited"


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Add a tool named ``name`` and tell the client its tool list changed."""

    def added() -> str:
        return f"{name} works"

    server.add_tool(added, name=name, description=f"added at run time: {name}")
    await ctx.session.send_tool_list_changed()
    return f"added {name}"


#: A 1x1 PNG, the "screenshot" the image tools return.
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8ff3f0005fe02fea7d6a4b10000000049454e44ae426082"
)


def screenshot() -> Image:
    """Take a screenshot (a 1x1 PNG)."""
    return Image(data=PNG_1X1, format="png")


def serve_http(port: int) -> None:
    import hypercorn.trio
    import trio
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            app = server.streamable_http_app()
            urls = await nursery.start(hypercorn.trio.serve, app, config)
            print("PORT", urls[0].rsplit(":", 1)[1], flush=True)

    trio.run(main)


if __name__ == "__main__":
    print("server_app: starting", file=sys.stderr, flush=True)  # tests find it in the log
    if "--images" in sys.argv:  # off by default: other tests count the tools
        server.add_tool(screenshot)
    if "--slow" in sys.argv:  # a server that takes a while to come up
        time.sleep(float(sys.argv[sys.argv.index("--slow") + 1]))
    if "--http" in sys.argv:
        serve_http(int(sys.argv[sys.argv.index("--http") + 1]) if len(sys.argv) > 2 else 0)
    else:
        server.run()
