"""The wait before a session's first model request, for MCP servers still starting.

Servers start in the background, so without this a one-shot prompt (``openheim run``, an
editor's first prompt) would go out with the built-in tools only. Each server is waited for
at most its ``startup_timeout_secs``; one that fails or times out is reported and the turn
goes on without it. A server is waited for on its first start only: later turns never wait
for one that failed (it keeps restarting in the background).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio

from openheim.agent.events import McpServerProgress, McpStartup
from openheim.mcp.actor import McpServerActor, ServerState
from openheim.mcp.supervisor import McpSupervisor

Emit = Callable[[McpStartup], Awaitable[None]]

STARTING, READY, FAILED = "starting", "ready", "failed"


async def wait_for_first_starts(supervisors: Sequence[McpSupervisor], emit: Emit) -> None:
    """Wait for every server still on its first start; ``emit`` hears the progress."""
    pending = [(owner, actor) for owner in supervisors for actor in owner.first_starts()]
    if not pending:
        return
    progress = {actor.name: McpServerProgress(actor.name, STARTING) for _, actor in pending}

    async def settle(owner: McpSupervisor, actor: McpServerActor) -> None:
        progress[actor.name] = await _wait_one(owner, actor)
        await emit(McpStartup(tuple(progress.values()), changed=actor.name))

    await emit(McpStartup(tuple(progress.values())))
    async with trio.open_nursery() as nursery:
        for owner, actor in pending:
            nursery.start_soon(settle, owner, actor)


async def _wait_one(owner: McpSupervisor, actor: McpServerActor) -> McpServerProgress:
    timeout = actor.config.startup_timeout_secs
    with trio.move_on_after(timeout):
        await actor.first_settled.wait()
    status = actor.first_status
    if status is None:  # our clock ran out before the actor's own startup timeout did
        owner.give_up(actor)
        return McpServerProgress(actor.name, FAILED, error=f"did not start within {timeout:g} s")
    if status.state is ServerState.CONNECTED:
        return McpServerProgress(actor.name, READY, tool_count=status.tool_count)
    return McpServerProgress(actor.name, FAILED, error=status.error or "failed to start")
