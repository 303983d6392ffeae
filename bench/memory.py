"""Memory: ``openheim serve`` idle, and per open idle ACP session at 1,000 and 10,000 sessions.

Run with ``.venv/bin/python bench/memory.py [--sessions 1000,10000] [--connections 10]``.
The server runs as a real subprocess (its RSS is read from ``/proc/PID/status``); sessions are
opened with ``session/new`` over a few ``/ws`` connections, pipelined, and left idle. KB per
session = (RSS after - RSS before) / N, where "before" is taken once the connections are open
and a warm-up of sessions has been created and closed, so first-use allocations (imports,
caches) are not charged to sessions. No turn runs, so the LLM address is never contacted.
"""

from __future__ import annotations

import argparse
import time

import trio
from harness import (
    WsAgent,
    emit_result,
    open_ws_agent,
    rss_kib,
    server_process,
    temp_home,
    verdict,
    ws_url,
)

TARGET_KB_PER_SESSION = 50.0
#: Requests one connection keeps in flight (the server allows 128).
WINDOW = 64
WARM_UP = 100
#: Nothing listens here: idle sessions never call the model.
UNUSED_LLM = "http://127.0.0.1:9/v1"


async def open_sessions(agent: WsAgent, count: int, cwd: str) -> list[str]:
    """``count`` session/new requests, ``WINDOW`` in flight at a time; returns the ids."""
    params = {"cwd": cwd, "mcpServers": []}
    ids: list[str] = []
    sent = 0
    while sent < min(WINDOW, count):
        await agent.request("session/new", params)
        sent += 1
    while len(ids) < count:
        message = await agent.receive()
        if "method" in message or "id" not in message:
            continue
        if "result" not in message:
            raise RuntimeError(f"session/new failed: {message}")
        ids.append(message["result"]["sessionId"])
        if sent < count:
            await agent.request("session/new", params)
            sent += 1
    return ids


async def settled_rss(pid: int) -> int:
    """RSS once the server has finished answering (a short pause, then the lowest of a few)."""
    await trio.sleep(0.5)
    samples = []
    for _ in range(3):
        samples.append(rss_kib(pid))
        await trio.sleep(0.1)
    return min(samples)


async def measure(sizes: list[int], connections: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    with temp_home() as home:
        limit = max(sizes) + WARM_UP + 100
        home.write_config(
            UNUSED_LLM,
            server={"max_sessions_per_tenant": limit, "disconnect_grace_secs": 3600},
        )
        async with server_process(home) as server:
            assert server.ready is not None
            url = ws_url(server.ready.group(1))
            figures["idle_rss_mib"] = round(await settled_rss(server.pid) / 1024, 1)
            print(f"server idle: RSS {figures['idle_rss_mib']:.1f} MiB")
            agents: list[WsAgent] = []
            async with trio.open_nursery() as nursery:
                for _ in range(connections):
                    agents.append(await nursery.start(hold_agent, url))
                cwd = str(home.workdir)
                warm = await open_sessions(agents[0], WARM_UP, cwd)
                for session_id in warm:
                    await agents[0].result("session/close", {"sessionId": session_id})
                before = await settled_rss(server.pid)
                opened = 0
                for size in sorted(sizes):
                    started = time.perf_counter()
                    await open_on_all(agents, size - opened, cwd)
                    elapsed = time.perf_counter() - started
                    rate = (size - opened) / elapsed
                    opened = size
                    after = await settled_rss(server.pid)
                    per_session = (after - before) / size
                    figures[f"kb_per_session_{size}"] = round(per_session, 2)
                    figures[f"rss_mib_{size}"] = round(after / 1024, 1)
                    print(
                        f"{size} idle sessions over {connections} connections: RSS "
                        f"{before / 1024:.1f} → {after / 1024:.1f} MiB, {per_session:.1f} KB per "
                        f"session ({verdict(per_session, TARGET_KB_PER_SESSION)} "
                        f"{TARGET_KB_PER_SESSION:g} KB); opened at {rate:.0f} sessions/s"
                    )
                nursery.cancel_scope.cancel()
    return figures


async def open_on_all(agents: list[WsAgent], count: int, cwd: str) -> None:
    """Spread ``count`` new sessions over the connections, all of them working at once."""
    share, extra = divmod(count, len(agents))
    async with trio.open_nursery() as nursery:
        for index, agent in enumerate(agents):
            nursery.start_soon(open_sessions, agent, share + (index < extra), cwd)


async def hold_agent(url: str, task_status: trio.TaskStatus[WsAgent]) -> None:
    async with open_ws_agent(url) as agent:
        task_status.started(agent)
        await trio.sleep_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", default="1000,10000", help="comma-separated sizes")
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args()
    sizes = [int(part) for part in args.sessions.split(",") if part.strip()]
    figures = trio.run(measure, sizes, args.connections)
    emit_result("memory", target_kb_per_session=TARGET_KB_PER_SESSION, **figures)


if __name__ == "__main__":
    main()
