"""Cancel latency: ``session/cancel`` while a tool runs ``sleep 30``, until the prompt answers
``cancelled`` and until every process of the command is gone, under the default sandbox and
with none.

Run with ``.venv/bin/python bench/cancel_latency.py [--runs 100] [--sandbox default,none]``.

For each ``--sandbox`` mode, one ``openheim acp`` process (ACP over stdio, as an editor runs it;
``default`` = no flag, the sandbox an editor gets, else ``--sandbox MODE``) serves every run;
the fake LLM (in this process: it answers one request per run) asks for ``execute_command``
with ``sleep 30.<marker>; true``, a number unique to the run. The command's host processes are
found by that marker in ``/proc/*/cmdline``: the shell and ``sleep``, and whatever the sandbox
runs them under (``bwrap`` and its init, or the Landlock launcher). A shell's
``$$`` cannot be used: inside bwrap's pid namespace it is not a host pid. Once the call is
``in_progress`` and ``sleep`` runs, the benchmark notes those processes, sends
``session/cancel`` and, at the same time, reads until the prompt's answer and polls until none
of them is left (zombies count as alive until reaped) and no process with the marker is.

The tree's processes outlive their parents by an instant when it is killed and are reparented
to the nearest "subreaper". On this machine that is PID 1, which reaps zombies only every second
or two, so the poll would go on finding them; this process therefore makes itself the
subreaper (``PR_SET_CHILD_SUBREAPER``) and reaps them at once, as a normal init would.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import attrs
import trio
from harness import PYTHON, Home, emit_result, percentile, prompt_params, temp_home, verdict

from openheim.testing import Reply, Script, open_fake_llm

TARGET_P99_MS = 50.0
#: Give up on one run after this long (the tool would otherwise sleep 30 s).
RUN_TIMEOUT = 10.0
POLL = 0.0002
PR_SET_CHILD_SUBREAPER = 36
MODES = ("default", "auto", "bwrap", "landlock", "none")
#: Makes each run's ``sleep`` argument unique: ``30.<pid><counter>``.
_COUNTER = itertools.count()


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def marked(marker: str) -> dict[int, list[str]]:
    """Live processes with ``marker`` in their command line: pid -> argv (a zombie's
    ``cmdline`` is empty, so only running processes are found)."""
    needle = marker.encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found[int(entry)] = [arg.decode(errors="replace") for arg in cmdline.split(b"\0")]
    return found


def backend_of(tree: dict[int, list[str]]) -> str:
    """Which sandbox the command runs under, from the processes around it."""
    argvs = list(tree.values())
    if any(os.path.basename(argv[0]) == "bwrap" for argv in argvs):
        return "bwrap"
    if any("landlock_exec" in arg for argv in argvs for arg in argv):
        return "landlock"
    return "none"


def alive(pid: int) -> bool:
    """Whether ``pid`` exists, zombie or not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


async def wait_tool_running(agent: StdioAgent, marker: str) -> dict[int, list[str]]:
    """Read updates until the call is ``in_progress``, then poll ``/proc`` until ``sleep
    <marker>`` runs; the command's processes then (pid -> argv)."""
    running = False
    while not running:
        message = await agent.receive()
        update = message.get("params", {}).get("update", {})
        running = update.get("status") == "in_progress"
    while True:
        tree = marked(marker)
        if any(argv[1:2] == [marker] for argv in tree.values()):  # ``sleep MARKER`` itself
            return tree
        await trio.sleep(0.001)


async def one_run(
    agent: StdioAgent, home: Home, script: Script
) -> tuple[float, float, dict[int, list[str]]]:
    """(ms until the prompt answered ``cancelled``, ms until no process of the command was
    left, the command's processes)."""
    marker = f"30.{os.getpid()}{next(_COUNTER):06d}"
    command = f"sleep {marker}; true"  # ``; true``: the shell forks ``sleep`` instead of exec
    script.append(Reply.tool_call("execute_command", {"command": command}))
    params = {"cwd": str(home.workdir), "mcpServers": []}
    session_id = (await agent.result("session/new", params))["sessionId"]
    prompt_id = await agent.request("session/prompt", prompt_params(session_id, "sleep"))
    tree = await wait_tool_running(agent, marker)
    members = list(tree)
    times: dict[str, float] = {}

    async def answered() -> None:
        response = await agent.until(prompt_id)
        times["answer"] = time.perf_counter()
        if response.get("result", {}).get("stopReason") != "cancelled":
            raise RuntimeError(f"prompt not cancelled: {response}")

    async def tree_gone() -> None:
        while True:
            reap(members)
            if not any(alive(pid) for pid in members):
                gone = time.perf_counter()  # before the scan below, which takes a while
                # Anything with the marker not seen at the start (none expected) is waited for.
                late = [pid for pid in marked(marker) if pid not in members]
                if not late:
                    times["gone"] = gone
                    return
                members.extend(late)
            await trio.sleep(POLL)

    started = time.perf_counter()
    await agent.send(
        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(answered)
        nursery.start_soon(tree_gone)
    await agent.result("session/close", {"sessionId": session_id})
    return (times["answer"] - started) * 1000, (times["gone"] - started) * 1000, tree


@attrs.define
class Series:
    """One mode's runs."""

    mode: str
    answers: list[float] = attrs.field(factory=list)
    gone: list[float] = attrs.field(factory=list)
    backends: set[str] = attrs.field(factory=set)
    processes: int = 0


async def measure_mode(mode: str, runs: int) -> Series:
    series = Series(mode)
    flag = [] if mode == "default" else ["--sandbox", mode]
    with temp_home() as home:
        script = Script()
        async with open_fake_llm(script) as llm:
            home.write_config(llm.base_url)
            with (home.path / "acp.log").open("wb") as log:
                process = await trio.lowlevel.open_process(
                    [PYTHON, "-m", "openheim", "acp", *flag],
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
                        answer, gone, tree = await one_run(agent, home, script)
                    series.answers.append(answer)
                    series.gone.append(gone)
                    series.backends.add(backend_of(tree))
                    series.processes = max(series.processes, len(tree))
            finally:
                with trio.CancelScope(shield=True):
                    if process.stdin is not None:
                        await process.stdin.aclose()  # end of input: a clean exit
                    with trio.move_on_after(5):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
    return series


async def measure(modes: list[str], runs: int) -> list[Series]:
    become_subreaper()
    return [await measure_mode(mode, runs) for mode in modes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument(
        "--sandbox",
        default="default,none",
        help=f"comma-separated modes, each measured apart: {', '.join(MODES)} "
        "(default = openheim acp with no --sandbox flag)",
    )
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.sandbox.split(",") if mode.strip()]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--sandbox takes modes among {', '.join(MODES)}")
    figures: dict[str, Any] = {"runs": args.runs, "target_p99_ms": TARGET_P99_MS, "modes": modes}
    for series in trio.run(measure, modes, args.runs):
        mode, answers, gone = series.mode, series.answers, series.gone
        backend = "+".join(sorted(series.backends))
        both = [max(a, g) for a, g in zip(answers, gone, strict=True)]
        p99 = percentile(both, 99)
        print(f"sandbox {mode} (backend {backend}, {series.processes} processes per command):")
        for name, values in (("prompt answered cancelled", answers), ("processes gone", gone)):
            print(
                f"  {name}: p50 {percentile(values, 50):.1f} ms, "
                f"p99 {percentile(values, 99):.1f} ms, max {max(values):.1f} ms "
                f"over {len(values)} runs"
            )
        print(f"  both done: p99 {p99:.1f} ms ({verdict(p99, TARGET_P99_MS)} {TARGET_P99_MS:g} ms)")
        figures.update(
            {
                f"{mode}_backend": backend,
                f"{mode}_processes": series.processes,
                f"{mode}_answer_p50_ms": round(percentile(answers, 50), 2),
                f"{mode}_answer_p99_ms": round(percentile(answers, 99), 2),
                f"{mode}_gone_p50_ms": round(percentile(gone, 50), 2),
                f"{mode}_gone_p99_ms": round(percentile(gone, 99), 2),
                f"{mode}_p99_ms": round(p99, 2),
            }
        )
    emit_result("cancel_latency", **figures)


if __name__ == "__main__":
    main()
