"""``execute_command`` in a tenant sandbox, per backend: real processes, no server.

What the server-level attack suite cannot easily show: a timeout or a cancel ends the whole
tree, daemons included; memory and network limits hold; the tenant's command cap queues.
"""

from __future__ import annotations

import socket
from pathlib import Path

import trio

from openheim.config.sandbox_settings import Limits, SandboxSettings
from openheim.sandbox.bwrap import BwrapBackend
from openheim.sandbox.environment import tenant_env
from openheim.sandbox.policy import tenant_policy
from openheim.sandbox.sandbox import Backend, Sandbox
from openheim.tools.base import ToolContext
from openheim.tools.shell import ExecuteCommandTool
from tests.processes import live_with_marker, unique_seconds


def make_backend(name: str) -> Backend:
    if name == "bwrap":
        return BwrapBackend()
    from openheim.sandbox.landlock import LandlockBackend

    return LandlockBackend()


def tenant_context(
    backend: str,
    workspace: Path,
    settings: SandboxSettings | None = None,
    slots: trio.Semaphore | None = None,
) -> ToolContext:
    settings = settings or SandboxSettings()
    env = tenant_env({"PATH": "/usr/bin:/bin"}, home=workspace)
    policy = tenant_policy([workspace], settings, env)
    return ToolContext(cwd=workspace, sandbox=Sandbox(make_backend(backend), policy, slots))


async def test_a_timeout_ends_daemons_too(tmp_path: Path, backend: str) -> None:
    context = tenant_context(backend, tmp_path)
    daemon, orphan = unique_seconds(1001), unique_seconds(1001)
    result = await ExecuteCommandTool().call(
        {"command": f"setsid -f sleep {daemon}; (sleep {orphan} &); sleep 30", "timeout_secs": 1},
        context,
    )
    assert result.is_error and "timed out after 1 s" in result.content
    assert live_with_marker(daemon) == [] and live_with_marker(orphan) == []


async def test_a_cancelled_command_ends_its_whole_tree(tmp_path: Path, backend: str) -> None:
    context = tenant_context(backend, tmp_path)
    daemon = unique_seconds(1002)
    with trio.move_on_after(1) as scope:
        await ExecuteCommandTool().call(
            {"command": f"setsid -f sleep {daemon}; echo go; sleep 30"}, context
        )
    assert scope.cancelled_caught
    assert live_with_marker(daemon) == []


async def test_memory_limit_stops_a_hog(tmp_path: Path, backend: str) -> None:
    settings = SandboxSettings(limits=Limits(max_memory_mb=100))
    context = tenant_context(backend, tmp_path, settings)
    hog = "python3 -c 'x = bytearray(400 * 1024 * 1024); print(len(x))'"
    result = await ExecuteCommandTool().call({"command": hog}, context)
    assert result.is_error and "MemoryError" in result.content
    small = await ExecuteCommandTool().call(
        {"command": "python3 -c 'print(len(bytearray(10 * 1024 * 1024)))'"}, context
    )
    assert small.content == "10485760"


async def test_network_off_means_no_connection_to_the_host(tmp_path: Path, backend: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe = (
            'python3 -c \'import socket; socket.create_connection(("127.0.0.1", '
            f'{port}), timeout=3); print("connected")\''
        )
        on = tenant_context(backend, tmp_path, SandboxSettings(network=True))
        off = tenant_context(backend, tmp_path, SandboxSettings(network=False))
        allowed = await ExecuteCommandTool().call({"command": probe}, on)
        refused = await ExecuteCommandTool().call({"command": probe}, off)
    assert allowed.content == "connected", allowed.content
    assert refused.is_error and "connected" not in refused.content.splitlines()


async def test_the_tenants_command_cap_queues_the_rest(tmp_path: Path, backend: str) -> None:
    # Each command holds a lock folder for a while: two at once would collide on mkdir.
    context = tenant_context(backend, tmp_path, slots=trio.Semaphore(1))
    command = {"command": "mkdir lock && sleep 0.3 && rmdir lock && echo ok"}
    results = []

    async def one() -> None:
        results.append(await ExecuteCommandTool().call(command, context))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(one)
    assert [r.content for r in results] == ["ok", "ok", "ok"]


async def test_exit_codes_and_signals_read_as_without_a_sandbox(
    tmp_path: Path, backend: str
) -> None:
    context = tenant_context(backend, tmp_path)
    failed = await ExecuteCommandTool().call({"command": "echo out; echo err >&2; exit 3"}, context)
    assert failed.content == "out\n[stderr]\nerr\n[exit code 3]" and failed.is_error
    killed = await ExecuteCommandTool().call({"command": "kill -9 $$"}, context)
    assert killed.is_error and "SIGKILL" in killed.content, killed.content
