"""Streaming: N concurrent ``/ws`` clients, each prompting for a 500-chunk reply, against a bare
httpx client reading the same fake LLM streams.

Run with ``.venv/bin/python bench/throughput.py [--clients 100,1000] [--chunks 500]``.

Three processes share the machine: the fake LLM (``bench/stamped_llm.py``), ``openheim serve``
and this one (the clients). The fake LLM is its own process so its emission stamps are not
delayed by the clients' work; the server is its own process so its numbers are its own. Each
chunk's text is the ``time.monotonic_ns()`` at which the fake LLM sent it; a client subtracts it
from the moment it received the ``agent_message_chunk`` frame: that is the chunk's latency
through openheim. The baseline does the same with N plain httpx streams (the client factory
openheim's provider client uses, so the same connection pool) reading the same SSE straight
from the fake LLM; latency(openheim) - latency(httpx) is the latency openheim adds.

Two passes per side and per N:

- **saturated**: the fake LLM streams as fast as it can; chunks received per second over the
  whole run is the throughput (latencies there are mostly queueing and are reported only).
- **paced**: one chunk every ``--chunk-delay`` seconds per stream (20 ms ≈ 50 tokens/s, a
  model's speed); the latency percentiles of this pass are the headline.

With 2 cores, 1,000 clients, the server and the fake LLM compete for CPU: the figures are a
floor for a real deployment, where the LLM and the clients are elsewhere.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from harness import (
    BENCH_DIR,
    PYTHON,
    Child,
    Home,
    WsAgent,
    emit_result,
    open_ws_agent,
    percentile,
    prompt_params,
    server_process,
    spawn,
    temp_home,
    tree_cpu_seconds,
    verdict,
    ws_url,
)

from openheim.config.model import ProviderConfig, ProviderKind
from openheim.providers.client import build_http_client

TARGET_P99_MS = 20.0
STAMP = re.compile(r'"(\d{20})"')
#: A text in an openheim frame: one stamp, or several back to back when the server merged
#: chunks waiting for a slow client into one update (each is 20 digits).
CHUNK_TEXT = re.compile(r'"text":"((?:\d{20})+)"')
STAMP_BYTES = re.compile(rb'"(\d{20})"')
#: WebSocket handshakes in flight at once while the clients connect.
CONNECTING = 50


@attrs.define
class Pass:
    """One side's run at one N: chunks seen, latencies (ns), and the wall time."""

    chunks: int = 0
    latencies: list[int] = attrs.field(factory=list)
    elapsed: float = 0.0
    peak_in_flight: int = 0
    #: Share of one core each process used during the pass ("clients" is this process).
    cpu: dict[str, float] = attrs.field(factory=dict)

    def rate(self) -> float:
        return self.chunks / self.elapsed if self.elapsed else 0.0

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) / 1e6 if self.latencies else float("nan")

    def cpu_us_per_chunk(self, name: str) -> float:
        """CPU a process spent per chunk relayed: less sensitive to a busy machine than
        latency is, so it is the figure to compare across changes."""
        return self.cpu[name] * self.elapsed / self.chunks * 1e6 if self.chunks else 0.0

    def describe_cpu(self) -> str:
        return ", ".join(f"{name} {share:.0%}" for name, share in self.cpu.items())


class CpuMeter:
    """CPU used by some processes (and this one) between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._before: dict[str, float] = {}
        self._started = 0.0

    def _now(self) -> dict[str, float]:
        now = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        return {**now, "clients": time.process_time()}

    def start(self) -> None:
        self._before = self._now()
        self._started = time.perf_counter()

    def stop(self, result: Pass) -> None:
        result.elapsed = time.perf_counter() - self._started
        after = self._now()
        result.cpu = {k: (after[k] - self._before[k]) / result.elapsed for k in after}


# --- the fake LLM process --------------------------------------------------------------------


@asynccontextmanager
async def stamped_llm(home: Home, chunks: int, delay: float) -> AsyncIterator[Child]:
    argv = [
        PYTHON,
        str(BENCH_DIR / "stamped_llm.py"),
        "--chunks",
        str(chunks),
        "--chunk-delay",
        str(delay),
    ]
    async with spawn(argv, log=home.path / "llm.log", ready=r"listening (\S+)") as child:
        yield child


def llm_url(llm: Child) -> str:
    assert llm.ready is not None
    return llm.ready.group(1) + "/v1"


def llm_peaks(home: Home) -> list[int]:
    """Peak concurrent streams the fake LLM reported so far (one ``stats`` line per stop)."""
    text = (home.path / "llm.log").read_text()
    return [json.loads(m)["peak_in_flight"] for m in re.findall(r"^stats (.*)$", text, re.M)]


# --- openheim clients ------------------------------------------------------------------------


async def stream_through_openheim(agent: WsAgent, session_id: str, result: Pass) -> None:
    """One prompt; every ``agent_message_chunk`` frame's stamps become latencies."""
    request_id = await agent.request("session/prompt", prompt_params(session_id, "stream"))
    while True:
        text = await agent.ws.get_message()
        now = time.monotonic_ns()
        if "agent_message_chunk" in text:  # the hot path: no JSON parsing
            for run in CHUNK_TEXT.findall(text):
                for start in range(0, len(run), 20):
                    result.latencies.append(now - int(run[start : start + 20]))
                    result.chunks += 1
            continue
        message = json.loads(text).get("data", {})
        if message.get("id") == request_id and "method" not in message:
            if message.get("result", {}).get("stopReason") != "end_turn":
                raise RuntimeError(f"prompt did not end normally: {message}")
            return


async def openheim_pass(agents: list[WsAgent], cwd: str, model: str, meter: CpuMeter) -> Pass:
    result = Pass()
    sessions = []
    params = {"cwd": cwd, "mcpServers": [], "_meta": {"model": f"fake/{model}"}}
    for agent in agents:
        sessions.append((await agent.result("session/new", params))["sessionId"])
    meter.start()
    async with trio.open_nursery() as nursery:
        for agent, session_id in zip(agents, sessions, strict=True):
            nursery.start_soon(stream_through_openheim, agent, session_id, result)
    meter.stop(result)
    for agent, session_id in zip(agents, sessions, strict=True):
        await agent.result("session/close", {"sessionId": session_id})
    return result


async def run_openheim(
    home: Home,
    llm: Child,
    clients: int,
    *,
    passes: tuple[str, ...],
    workers: int = 1,
    idle: int = 0,
) -> dict[str, Pass]:
    home.write_config(
        llm_url(llm),
        provider='models = ["fast", "paced"]\nrecover_text_tool_calls = false',
        server={
            "max_sessions_per_tenant": clients + idle + 10,
            "max_turns_per_tenant": clients,
            "slow_client_timeout_secs": 300,
            "disconnect_grace_secs": 1,
        },
    )
    results: dict[str, Pass] = {}
    async with server_process(home, workers) as server, trio.open_nursery() as nursery:
        assert server.ready is not None
        url = ws_url(server.ready.group(1))
        agents: list[WsAgent] = []
        limiter = trio.CapacityLimiter(CONNECTING)
        async with trio.open_nursery() as connecting:
            for _ in range(clients):
                connecting.start_soon(connect_one, nursery, url, limiter, agents)
        # Connected besides, each with a session, and silent for the whole run.
        idlers: list[WsAgent] = []
        async with trio.open_nursery() as connecting:
            for _ in range(idle):
                connecting.start_soon(connect_one, nursery, url, limiter, idlers)
        params = {"cwd": str(home.workdir), "mcpServers": []}
        for agent in idlers:
            await agent.result("session/new", params)
        meter = CpuMeter({"server": server.pid, "llm": llm.pid})
        for model in passes:
            results[model] = await openheim_pass(agents, str(home.workdir), model, meter)
        nursery.cancel_scope.cancel()
    return results


async def connect_one(
    nursery: trio.Nursery, url: str, limiter: trio.CapacityLimiter, agents: list[WsAgent]
) -> None:
    async with limiter:
        agents.append(await nursery.start(hold_agent, url))


async def hold_agent(url: str, task_status: trio.TaskStatus[WsAgent]) -> None:
    async with open_ws_agent(url) as agent:
        task_status.started(agent)
        await trio.sleep_forever()


# --- bare httpx clients ----------------------------------------------------------------------


async def stream_bare(http: Any, url: str, model: str, result: Pass) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "stream"}], "stream": True}
    buffer = b""
    async with http.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for data in response.aiter_raw():
            now = time.monotonic_ns()
            buffer += data
            events, _, buffer = buffer.rpartition(b"\n\n")
            for stamp in STAMP_BYTES.findall(events):
                result.latencies.append(now - int(stamp))
                result.chunks += 1


async def run_bare(llm: Child, clients: int, *, passes: tuple[str, ...]) -> dict[str, Pass]:
    url = f"{llm_url(llm)}/chat/completions"
    config = ProviderConfig(
        name="fake",
        kind=ProviderKind.OPENAI_COMPATIBLE,
        api_base=llm_url(llm),
        default_model="fast",
        models=("fast", "paced"),
        timeout_secs=600,
    )
    results: dict[str, Pass] = {}
    meter = CpuMeter({"llm": llm.pid})
    async with build_http_client(config) as http:
        for model in passes:
            result = Pass()
            meter.start()
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(stream_bare, http, url, model, result)
            meter.stop(result)
            results[model] = result
    return results


# --- the benchmark ---------------------------------------------------------------------------


async def measure(
    clients: int, chunks: int, delay: float, workers: int = 1, idle: int = 0
) -> dict[str, dict[str, Pass]]:
    passes = ("fast", "paced")
    sides: dict[str, dict[str, Pass]] = {}
    with temp_home() as home:
        async with stamped_llm(home, chunks, delay) as llm:
            sides["openheim"] = await run_openheim(
                home, llm, clients, passes=passes, workers=workers, idle=idle
            )
        openheim_peak = llm_peaks(home)[-1]
        async with stamped_llm(home, chunks, delay) as llm:
            sides["httpx"] = await run_bare(llm, clients, passes=passes)
        bare_peak = llm_peaks(home)[-1]
    for side, peak in (("openheim", openheim_peak), ("httpx", bare_peak)):
        for result in sides[side].values():
            result.peak_in_flight = peak
    expected = clients * chunks
    for side in sides.values():
        for model, result in side.items():
            if result.chunks != expected:
                raise RuntimeError(f"{model}: {result.chunks} chunks seen, {expected} expected")
    return sides


def report(clients: int, sides: dict[str, dict[str, Pass]]) -> dict[str, Any]:
    oh, bare = sides["openheim"], sides["httpx"]
    for name, side in sides.items():
        fast, paced = side["fast"], side["paced"]
        print(
            f"N={clients} {name:8}: saturated {fast.rate():8.0f} chunks/s "
            f"(p50 {fast.ms(50):.1f} ms, p99 {fast.ms(99):.1f} ms); paced p50 "
            f"{paced.ms(50):.2f} ms, p99 {paced.ms(99):.2f} ms; "
            f"peak {fast.peak_in_flight} streams at once at the LLM"
        )
        print(f"    CPU (saturated): {fast.describe_cpu()}; (paced): {paced.describe_cpu()}")
    print(
        f"N={clients} server CPU per chunk: saturated {oh['fast'].cpu_us_per_chunk('server'):.0f}"
        f" us, paced {oh['paced'].cpu_us_per_chunk('server'):.0f} us (bare httpx clients: "
        f"{bare['fast'].cpu_us_per_chunk('clients'):.0f} / "
        f"{bare['paced'].cpu_us_per_chunk('clients'):.0f} us)"
    )
    added_p50 = oh["paced"].ms(50) - bare["paced"].ms(50)
    added_p99 = oh["paced"].ms(99) - bare["paced"].ms(99)
    print(
        f"N={clients} openheim adds p50 {added_p50:.2f} ms, p99 {added_p99:.2f} ms "
        f"({verdict(added_p99, TARGET_P99_MS)} p99 {TARGET_P99_MS:g} ms); throughput "
        f"{oh['fast'].rate() / bare['fast'].rate():.2f}x of bare httpx"
    )
    return {
        f"n{clients}_chunks_per_s": round(oh["fast"].rate()),
        f"n{clients}_httpx_chunks_per_s": round(bare["fast"].rate()),
        f"n{clients}_throughput_ratio": round(oh["fast"].rate() / bare["fast"].rate(), 3),
        f"n{clients}_p50_ms": round(oh["paced"].ms(50), 3),
        f"n{clients}_p99_ms": round(oh["paced"].ms(99), 3),
        f"n{clients}_httpx_p50_ms": round(bare["paced"].ms(50), 3),
        f"n{clients}_httpx_p99_ms": round(bare["paced"].ms(99), 3),
        f"n{clients}_added_p50_ms": round(added_p50, 3),
        f"n{clients}_added_p99_ms": round(added_p99, 3),
        f"n{clients}_latency_ratio_p99": round(oh["paced"].ms(99) / bare["paced"].ms(99), 2),
        f"n{clients}_saturated_p99_ms": round(oh["fast"].ms(99), 1),
        f"n{clients}_peak_streams": oh["fast"].peak_in_flight,
        f"n{clients}_httpx_peak_streams": bare["fast"].peak_in_flight,
        f"n{clients}_cpu_saturated": {k: round(v, 2) for k, v in oh["fast"].cpu.items()},
        f"n{clients}_server_cpu_us_per_chunk": round(oh["fast"].cpu_us_per_chunk("server")),
        f"n{clients}_server_cpu_us_per_chunk_paced": round(oh["paced"].cpu_us_per_chunk("server")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", default="100,1000", help="comma-separated N values")
    parser.add_argument("--chunks", type=int, default=500, help="chunks per reply")
    parser.add_argument(
        "--chunk-delay", type=float, default=0.02, help="seconds between chunks when paced"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="serve --workers (server CPU counts the parent and its workers)",
    )
    parser.add_argument(
        "--idle",
        type=int,
        default=0,
        help="WebSocket clients connected besides, each with a session, that stay silent",
    )
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "workers": args.workers,
        "idle_clients": args.idle,
        "chunks": args.chunks,
        "chunk_delay_ms": args.chunk_delay * 1000,
        "target_p99_ms": TARGET_P99_MS,
    }
    for clients in [int(part) for part in args.clients.split(",") if part.strip()]:
        sides = trio.run(measure, clients, args.chunks, args.chunk_delay, args.workers, args.idle)
        figures["clients"] = [*figures.get("clients", []), clients]
        figures.update(report(clients, sides))
    emit_result("throughput", **figures)


if __name__ == "__main__":
    main()
