"""Cancel latency: ``session/cancel`` while a tool runs ``sleep 30``, until the prompt answers
``cancelled`` and until the tool's process group is gone.

Run with ``.venv/bin/python bench/cancel_latency.py [--runs 100]``.

One ``openheim acp`` process (ACP over stdio, as an editor runs it) serves every run; the fake
LLM (in this process: it only answers one request per run) asks for ``execute_command`` with
``echo $$ > FILE; sleep 30``. The command runs in its own session, so ``$$`` (the shell's pid)
is its process group id. Once the file holds it and the call is ``in_progress``, the benchmark
sends ``session/cancel`` and, at the same time, reads until the prompt's answer and polls
``os.killpg(pgid, 0)`` until the group is gone (zombies count as alive until reaped).

The shell's children outlive it by an instant when the group is killed and are reparented to
the nearest "subreaper". In this sandbox that is PID 1, which reaps zombies only every second
or two, so ``killpg`` would go on finding them; this process therefore makes itself the
subreaper (``PR_SET_CHILD_SUBREAPER``) and reaps them at once, as a normal init would.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import trio
from harness import PYTHON, Home, emit_result, percentile, prompt_params, temp_home, verdict

from openheim.testing import Reply, Script, open_fake_llm

TARGET_P99_MS = 50.0
#: Give up on one run after this long (the tool would otherwise sleep 30 s).
RUN_TIMEOUT = 10.0
POLL = 0.0002
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def group_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` (from ``/proc/*/stat``: state, ppid, pgrp, ...)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def reap(pids: list[int]) -> None:
    """Reap those of ``pids`` that were reparented to this process and have exited."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):  # not (or no longer) our child
            os.waitpid(pid, os.WNOHANG)


class StdioAgent:
    """JSON-RPC lines over the pipes of an ``openheim acp`` process."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = bytearray()
        self._next_id = 0

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(json.dumps(message).encode() + b"\n")

    async def request(self, method: str, params: Any) -> int:
        self._next_id += 1
        await self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        return self._next_id

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            data = await self.process.stdout.receive_some(65536)
            if not data:
                raise EOFError("openheim acp closed its stdout")
            self._buffer += data
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer[:] = rest
        return json.loads(line)

    async def until(self, request_id: int) -> dict[str, Any]:
        while True:
            message = await self.receive()
            if message.get("id") == request_id and "method" not in message:
                return message

    async def result(self, method: str, params: Any) -> Any:
        response = await self.until(await self.request(method, params))
        if "result" not in response:
            raise RuntimeError(f"{method} failed: {response}")
        return response["result"]


async def wait_tool_running(agent: StdioAgent, pgid_file: Path) -> int:
    """Read updates until the call is ``in_progress`` and the shell has written its pgid."""
    running = False
    while not running:
        message = await agent.receive()
        update = message.get("params", {}).get("update", {})
        running = update.get("status") == "in_progress"
    while (pgid := read_pgid(pgid_file)) is None:  # noqa: ASYNC110 (another process writes)
        await trio.sleep(0.001)
    return pgid


def read_pgid(path: Path) -> int | None:
    """The pgid the shell wrote, once the whole line is there (a local file: no thread)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") else None


async def one_run(agent: StdioAgent, home: Home, pgid_file: Path) -> tuple[float, float]:
    """(ms until the prompt answered ``cancelled``, ms until the process group was gone)."""
    await trio.Path(pgid_file).unlink(missing_ok=True)
    params = {"cwd": str(home.workdir), "mcpServers": []}
    session_id = (await agent.result("session/new", params))["sessionId"]
    prompt_id = await agent.request("session/prompt", prompt_params(session_id, "sleep"))
    pgid = await wait_tool_running(agent, pgid_file)
    await trio.sleep(0.02)  # let the shell start ``sleep``
    members = group_members(pgid)
    times: dict[str, float] = {}

    async def answered() -> None:
        response = await agent.until(prompt_id)
        times["answer"] = time.perf_counter()
        if response.get("result", {}).get("stopReason") != "cancelled":
            raise RuntimeError(f"prompt not cancelled: {response}")

    async def group_gone() -> None:
        while True:
            reap(members)
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                times["gone"] = time.perf_counter()
                return
            await trio.sleep(POLL)

    started = time.perf_counter()
    await agent.send(
        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(answered)
        nursery.start_soon(group_gone)
    await agent.result("session/close", {"sessionId": session_id})
    return (times["answer"] - started) * 1000, (times["gone"] - started) * 1000


async def measure(runs: int) -> tuple[list[float], list[float]]:
    become_subreaper()
    answers: list[float] = []
    gone: list[float] = []
    with temp_home() as home:
        pgid_file = home.workdir / "pgid"
        command = f"echo $$ > {pgid_file}; sleep 30"
        script = Script([Reply.tool_call("execute_command", {"command": command})], repeat=True)
        async with open_fake_llm(script) as llm:
            home.write_config(llm.base_url)
            with (home.path / "acp.log").open("wb") as log:
                process = await trio.lowlevel.open_process(
                    [PYTHON, "-m", "openheim", "acp"],
                    cwd=home.workdir,
                    env=home.env(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                )
            try:
                agent = StdioAgent(process)
                await agent.result("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
                for _ in range(runs):
                    with trio.fail_after(RUN_TIMEOUT):
                        answer, group = await one_run(agent, home, pgid_file)
                    answers.append(answer)
                    gone.append(group)
            finally:
                with trio.CancelScope(shield=True):
                    if process.stdin is not None:
                        await process.stdin.aclose()  # end of input: a clean exit
                    with trio.move_on_after(5):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
    return answers, gone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    answers, gone = trio.run(measure, args.runs)
    both = [max(a, g) for a, g in zip(answers, gone, strict=True)]
    p99 = percentile(both, 99)
    for name, values in (("prompt answered cancelled", answers), ("process group gone", gone)):
        print(
            f"{name}: p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms, "
            f"max {max(values):.1f} ms over {len(values)} runs"
        )
    print(f"both done: p99 {p99:.1f} ms ({verdict(p99, TARGET_P99_MS)} {TARGET_P99_MS:g} ms)")
    emit_result(
        "cancel_latency",
        runs=len(both),
        target_p99_ms=TARGET_P99_MS,
        answer_p50_ms=round(percentile(answers, 50), 2),
        answer_p99_ms=round(percentile(answers, 99), 2),
        group_gone_p50_ms=round(percentile(gone, 50), 2),
        group_gone_p99_ms=round(percentile(gone, 99), 2),
        p99_ms=round(p99, 2),
    )


if __name__ == "__main__":
    main()
