"""Soak: 10,000 sequential session lifecycles through ``openheim serve``; leaks show as growth.

Run with ``.venv/bin/python bench/soak.py [--lifecycles 10000] [--warm-up 200]``.

A lifecycle is ``session/new``, a prompt whose model asks for one ``execute_command`` (a real
shell, so pipes and child processes are exercised) and then answers, and ``session/close``.
The client reconnects every ``--reconnect-every`` lifecycles, so connections are cycled too.
The server and the fake LLM are subprocesses; the server's RSS (``/proc/PID/status``) and open
descriptors (``/proc/PID/fd``) are read with no connection open, after the warm-up (so first-use
allocations and caches are not counted) and after the run. Samples along the way show whether
any growth is a plateau or a slope.
"""

from __future__ import annotations

import argparse
import time

import trio
from harness import (
    WsAgent,
    emit_result,
    fake_llm_process,
    fd_count,
    open_ws_agent,
    prompt_params,
    rss_kib,
    server_process,
    temp_home,
    verdict,
    ws_url,
)

from openheim.testing import Reply

TARGET_RSS_MB = 5.0
TARGET_FDS = 0
SAMPLES = 10


async def lifecycle(agent: WsAgent, cwd: str) -> None:
    session_id = await agent.new_session(cwd)
    result = await agent.result("session/prompt", prompt_params(session_id, "run it"))
    if result.get("stopReason") != "end_turn":
        raise RuntimeError(f"prompt ended {result}")
    await agent.result("session/close", {"sessionId": session_id})


async def run_lifecycles(url: str, cwd: str, count: int, reconnect_every: int) -> None:
    done = 0
    while done < count:
        async with open_ws_agent(url) as agent:
            for _ in range(min(reconnect_every, count - done)):
                await lifecycle(agent, cwd)
                done += 1


async def settled(pid: int) -> tuple[int, int]:
    """(RSS KiB, open fds) once the server has had a moment to finish closing things."""
    await trio.sleep(1.0)
    return rss_kib(pid), fd_count(pid)


async def measure(args: argparse.Namespace) -> dict[str, float]:
    responses = [
        Reply.tool_call("execute_command", {"command": "echo soak"}),
        Reply.text("done"),
    ]
    with temp_home() as home:
        async with fake_llm_process(home, responses) as llm_url:
            home.write_config(llm_url, server={"disconnect_grace_secs": 1})
            async with server_process(home) as server:
                assert server.ready is not None
                url, cwd = ws_url(server.ready.group(1)), str(home.workdir)
                await run_lifecycles(url, cwd, args.warm_up, args.reconnect_every)
                rss_before, fds_before = await settled(server.pid)
                samples = []
                step = max(args.lifecycles // SAMPLES, 1)
                started = time.perf_counter()
                done = 0
                while done < args.lifecycles:
                    batch = min(step, args.lifecycles - done)
                    await run_lifecycles(url, cwd, batch, args.reconnect_every)
                    done += batch
                    samples.append((done, rss_kib(server.pid), fd_count(server.pid)))
                elapsed = time.perf_counter() - started
                rss_after, fds_after = await settled(server.pid)
    growth_mb = (rss_after - rss_before) / 1024
    trend = ", ".join(f"{n}: {rss / 1024:.1f} MiB/{fds} fds" for n, rss, fds in samples)
    print(f"samples (lifecycles: RSS/fds, a connection open): {trend}")
    print(
        f"{args.lifecycles} lifecycles in {elapsed:.1f} s ({args.lifecycles / elapsed:.0f}/s), "
        f"after {args.warm_up} warm-up: RSS {rss_before / 1024:.1f} → {rss_after / 1024:.1f} MiB "
        f"({growth_mb:+.2f} MB, {verdict(growth_mb, TARGET_RSS_MB)} {TARGET_RSS_MB:g} MB); "
        f"fds {fds_before} → {fds_after} ({fds_after - fds_before:+d}, "
        f"{verdict(fds_after - fds_before, TARGET_FDS)} {TARGET_FDS})"
    )
    return {
        "lifecycles": args.lifecycles,
        "lifecycles_per_s": round(args.lifecycles / elapsed, 1),
        "rss_before_mib": round(rss_before / 1024, 2),
        "rss_after_mib": round(rss_after / 1024, 2),
        "rss_growth_mb": round(growth_mb, 2),
        "fds_before": fds_before,
        "fds_after": fds_after,
        "fd_growth": fds_after - fds_before,
        "target_rss_mb": TARGET_RSS_MB,
        "target_fds": TARGET_FDS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lifecycles", type=int, default=10_000)
    parser.add_argument("--warm-up", type=int, default=200)
    parser.add_argument("--reconnect-every", type=int, default=100)
    args = parser.parse_args()
    emit_result("soak", **trio.run(measure, args))


if __name__ == "__main__":
    main()
