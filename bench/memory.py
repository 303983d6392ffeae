"""Memory: ``openheim serve`` idle, and per open idle ACP session at 1,000, 10,000 and
100,000 sessions, with ``session/new`` latency at each size.

Run with ``.venv/bin/python bench/memory.py [--sessions 1000,10000,100000] [--connections 10]
[--store auto|files|postgres]``. The server runs as a real subprocess (its RSS is read from
``/proc/PID/status``); sessions are opened with ``session/new`` over a few ``/ws``
connections, pipelined, and left idle. KB per session = (RSS after - RSS before) / N, where
"before" is taken once the connections are open and a warm-up of sessions has been created and
closed, so first-use allocations (imports, caches) are not charged to sessions. No turn runs,
so the LLM address is never contacted.

Latency: at each size, ``LATENCY_SAMPLES`` more ``session/new`` requests one at a time on one
connection, each timed from sending to its answer (they count towards the next size).

Store: a live session on the file store holds its lock file open, so N sessions need N
descriptors; ``auto`` uses a throwaway PostgreSQL cluster (``initdb`` from the OS packages)
when the largest size would pass this process's descriptor limit, else the files.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import resource
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import trio
from harness import (
    WsAgent,
    emit_result,
    open_ws_agent,
    percentile,
    rss_kib,
    server_process,
    temp_home,
    verdict,
    ws_url,
)

#: Issue 19: an idle session costs at most this at 100,000 sessions.
TARGET_KB_PER_SESSION = 10.0
#: Issue 19: ``session/new`` p99 at that scale.
TARGET_NEW_P99_MS = 5.0
#: Requests one connection keeps in flight (the server allows 128).
WINDOW = 64
WARM_UP = 100
LATENCY_SAMPLES = 500
#: Descriptors the server needs besides one per session (sockets, logs, the store).
SPARE_FDS = 1000
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


async def measure(sizes: list[int], connections: int, store: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    with temp_home() as home, store_url(store, max(sizes)) as url:
        limit = max(sizes) + WARM_UP + LATENCY_SAMPLES * len(sizes) + 100
        home.write_config(
            UNUSED_LLM,
            server={"max_sessions_per_tenant": limit, "disconnect_grace_secs": 3600},
        )
        if url is not None:
            with (home.path / "config.toml").open("a") as config:
                config.write(f'[store]\nurl = "{url}"\npool_size = 10\n')
        print(f"store: {'postgresql' if url else 'files'}")
        async with server_process(home) as server:
            assert server.ready is not None
            address = ws_url(server.ready.group(1))
            figures["idle_rss_mib"] = round(await settled_rss(server.pid) / 1024, 1)
            print(f"server idle: RSS {figures['idle_rss_mib']:.1f} MiB")
            agents: list[WsAgent] = []
            async with trio.open_nursery() as nursery:
                for _ in range(connections):
                    agents.append(await nursery.start(hold_agent, address))
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
                    p50, p99 = await new_session_latency(agents[0], cwd)
                    opened = size + LATENCY_SAMPLES
                    figures[f"new_p50_ms_{size}"] = round(p50, 2)
                    figures[f"new_p99_ms_{size}"] = round(p99, 2)
                    print(
                        f"  session/new with {size} open, one at a time: p50 {p50:.2f} ms, "
                        f"p99 {p99:.2f} ms ({verdict(p99, TARGET_NEW_P99_MS)} "
                        f"{TARGET_NEW_P99_MS:g} ms)"
                    )
                nursery.cancel_scope.cancel()
    return figures


async def new_session_latency(agent: WsAgent, cwd: str) -> tuple[float, float]:
    """p50 and p99 (ms) of ``LATENCY_SAMPLES`` ``session/new`` requests, one at a time."""
    params = {"cwd": cwd, "mcpServers": []}
    times = []
    for _ in range(LATENCY_SAMPLES):
        started = time.perf_counter()
        await agent.result("session/new", params)
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50), percentile(times, 99)


def needs_postgres(store: str, sessions: int) -> bool:
    """Whether to use PostgreSQL: asked, or ``auto`` and too few descriptors for the files
    (the soft limit is raised to the hard one first; the server inherits it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if store != "auto":
        return store == "postgres"
    return sessions + SPARE_FDS > hard


@contextlib.contextmanager
def store_url(store: str, sessions: int) -> Iterator[str | None]:
    """None: the file store; else the URL of a database in a throwaway PostgreSQL cluster."""
    if not needs_postgres(store, sessions):
        yield None
        return
    initdb = shutil.which("initdb")
    if initdb is None:
        raise SystemExit("PostgreSQL is needed for this many sessions: install it (initdb)")
    bindir = Path(initdb).resolve().parent
    # PostgreSQL refuses to run as root: then it runs as the `postgres` user.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="openheim-bench-pg-"))
    if prefix:
        pwd.getpwnam("postgres")
        shutil.chown(base, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    data = base / "data"
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres"], **quiet)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*pg_ctl, "-o", options, "-w", "-l", str(base / "log"), "start"], **quiet)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], **{**quiet, "check": False})
        shutil.rmtree(base, ignore_errors=True)


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
    parser.add_argument("--sessions", default="1000,10000,100000", help="comma-separated sizes")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--store", choices=("auto", "files", "postgres"), default="auto")
    args = parser.parse_args()
    sizes = [int(part) for part in args.sessions.split(",") if part.strip()]
    figures = trio.run(measure, sizes, args.connections, args.store)
    emit_result(
        "memory",
        target_kb_per_session=TARGET_KB_PER_SESSION,
        target_new_p99_ms=TARGET_NEW_P99_MS,
        **figures,
    )


if __name__ == "__main__":
    main()
