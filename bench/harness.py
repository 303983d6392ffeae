"""Plumbing shared by the benchmarks: temporary homes, child processes that always end, /proc
readings, a small ``/ws`` client and the ``RESULT {...}`` line ``run_all.py`` collects.

Each benchmark stays a plain script; this module only keeps them short and alike. Everything
runs on 127.0.0.1 against the fake LLM from ``openheim.testing``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from openheim.testing import Response, dump_script

PYTHON = sys.executable
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
#: How long a child process may take to say it is ready.
START_TIMEOUT = 30.0
#: How long a child gets to exit after SIGTERM before it is killed.
STOP_GRACE = 5.0


# --- results -----------------------------------------------------------------------------------


def emit_result(bench: str, **figures: Any) -> None:
    """The machine-readable line ``run_all.py`` looks for: ``RESULT {"bench": ..., ...}``."""
    print("RESULT " + json.dumps({"bench": bench, **figures}, sort_keys=False), flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def verdict(value: float, target: float) -> str:
    return "meets" if value <= target else "MISSES"


# --- /proc ------------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (``VmRSS`` of ``/proc/PID/status``)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    if match is None:
        raise RuntimeError(f"no VmRSS for process {pid}")
    return int(match.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live children (``serve --workers N``: the workers)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        for child in children:
            with contextlib.suppress(FileNotFoundError):  # it ended meanwhile
                total += tree_cpu_seconds(int(child))
    return total


def fd_count(pid: int) -> int:
    """Open file descriptors of a process (entries of ``/proc/PID/fd``)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- an OPENHEIM_HOME pointing at the fake LLM -------------------------------------------------


@attrs.define
class Home:
    """A temporary ``OPENHEIM_HOME`` and a working folder (the server's workspace root)."""

    path: Path
    workdir: Path

    def write_config(
        self, api_base: str, *, server: Mapping[str, Any] | None = None, provider: str = ""
    ) -> None:
        """Provider ``fake`` (OpenAI-compatible, no key) at ``api_base``; ``[server]`` keys."""
        lines = [
            'default_provider = "fake"',
            "max_iterations = 10",
            "[providers.fake]",
            f'api_base = "{api_base}"',
            'default_model = "fake-model"',
            "max_retries = 0",
            "timeout_secs = 600",
            provider,
        ]
        if server:
            lines.append("[server]")
            lines.extend(f"{key} = {json.dumps(value)}" for key, value in server.items())
        (self.path / "config.toml").write_text("\n".join(lines) + "\n")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENHEIM_")}
        env.update(OPENHEIM_HOME=str(self.path), **extra)
        return env

    def script(self, name: str, responses: Sequence[Response]) -> Path:
        """Write a fake LLM script file (JSON) into the home."""
        path = self.path / name
        dump_script(path, responses)
        return path


@contextmanager
def temp_home() -> Iterator[Home]:
    with tempfile.TemporaryDirectory(prefix="openheim-bench-") as folder:
        home = Home(Path(folder) / "home", Path(folder) / "work")
        home.path.mkdir()
        home.workdir.mkdir()
        yield home


# --- child processes --------------------------------------------------------------------------


@attrs.define
class Child:
    """A child process whose output goes to a log file; ``ready`` is the start-up line match."""

    process: trio.Process
    log: Path
    ready: re.Match[str] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@asynccontextmanager
async def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    ready: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> AsyncIterator[Child]:
    """Start ``argv`` (stdout and stderr into ``log``), wait until ``ready`` (a regex) appears.

    On the way out, normally, on an error or on Ctrl-C, the process gets SIGTERM, then SIGKILL
    after ``STOP_GRACE``: no benchmark leaves a server or fake LLM behind.
    """
    with log.open("wb") as sink:
        process = await trio.lowlevel.open_process(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    child = Child(process, log)
    try:
        with trio.fail_after(START_TIMEOUT):
            while (match := re.search(ready, child.output())) is None:
                if process.poll() is not None:
                    raise RuntimeError(f"{argv[2:]} exited early:\n{child.output()}")
                await trio.sleep(0.02)
        child.ready = match
        yield child
    finally:
        with trio.CancelScope(shield=True):
            await stop(process)


async def stop(process: trio.Process) -> None:
    """SIGTERM, wait ``STOP_GRACE``, then SIGKILL; always reaps."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(STOP_GRACE):
            await process.wait()
    if process.poll() is None:
        process.kill()
    await process.wait()


@asynccontextmanager
async def fake_llm_process(
    home: Home, responses: Sequence[Response], *, name: str = "llm"
) -> AsyncIterator[str]:
    """``python -m openheim.testing --script F --repeat``; yields its OpenAI base URL."""
    script = home.script(f"{name}.json", responses)
    argv = [PYTHON, "-m", "openheim.testing", "--script", str(script), "--repeat"]
    async with spawn(argv, log=home.path / f"{name}.log", ready=r"listening (\S+)") as child:
        assert child.ready is not None
        yield child.ready.group(1)  # already the base URL, ending in /v1


@asynccontextmanager
async def server_process(home: Home, workers: int = 1) -> AsyncIterator[Child]:
    """``openheim serve --port 0 [--workers N]`` in ``home.workdir``; ``child.ready.group(1)``
    is its URL."""
    argv = [PYTHON, "-m", "openheim", "serve", "--port", "0", "--workers", str(workers)]
    async with spawn(
        argv,
        log=home.path / "serve.log",
        ready=r"openheim serving on (\S+)",
        env=home.env(),
        cwd=home.workdir,
    ) as child:
        yield child


def ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


# --- a small /ws client -----------------------------------------------------------------------

GREETING_TYPE = "connected"


class WsAgent:
    """One ``/ws`` connection speaking ACP in ``{"channel": "agent", "data": ...}`` envelopes.

    Reads only when asked (no background task), which is all a benchmark needs and keeps the
    client's own cost low.
    """

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._next_id = 0

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps({"channel": "agent", "data": message}))

    async def request(self, method: str, params: Any = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return self._next_id

    async def notify(self, method: str, params: Any) -> None:
        await self.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def receive(self) -> dict[str, Any]:
        """The next agent message (fs frames are skipped)."""
        while True:
            frame = json.loads(await self.ws.get_message())
            if frame.get("channel") == "agent":
                return frame["data"]

    async def until(self, request_id: int) -> dict[str, Any]:
        """Read until the response to ``request_id``; returns it (anything before is dropped)."""
        while True:
            message = await self.receive()
            if message.get("id") == request_id and "method" not in message:
                return message

    async def result(self, method: str, params: Any = None) -> Any:
        response = await self.until(await self.request(method, params))
        if "result" not in response:
            raise RuntimeError(f"{method} failed: {response}")
        return response["result"]

    async def initialize(self) -> None:
        await self.result("initialize", {"protocolVersion": 1, "clientCapabilities": {}})

    async def new_session(self, cwd: str | Path) -> str:
        result = await self.result("session/new", {"cwd": str(cwd), "mcpServers": []})
        return result["sessionId"]


@asynccontextmanager
async def open_ws_agent(url: str) -> AsyncIterator[WsAgent]:
    """A ``/ws`` client on ``url`` (ws://host:port), greeting read and ``initialize`` done."""
    opened: WebSocketConnection | None = None
    try:
        async with open_websocket_url(
            f"{url}/ws", message_queue_size=256, max_message_size=16 * 1024 * 1024
        ) as ws:
            opened = ws
            greeting = json.loads(await ws.get_message())
            if greeting.get("data", {}).get("type") != GREETING_TYPE:
                raise RuntimeError(f"unexpected greeting {greeting}")
            agent = WsAgent(ws)
            await agent.initialize()
            yield agent
    finally:
        # trio-websocket 0.12 never closes its socket when the server closed first.
        if opened is not None:
            await opened._stream.aclose()


def prompt_params(session_id: str, text: str) -> dict[str, Any]:
    return {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
