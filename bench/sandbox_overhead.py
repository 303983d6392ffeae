"""Sandbox overhead: what each backend adds to ``execute_command "echo hi"``, p50 and p99.

Run with ``.venv/bin/python bench/sandbox_overhead.py [--runs 300] [--warm-up 20]``.

Every call goes through the real tool path, ``ExecuteCommandTool().call({"command": "echo
hi"}, ToolContext(cwd=WORKSPACE, sandbox=...))`` inside trio, on a temporary workspace. The
cases, each a ``Sandbox(backend, policy)``:

- ``none``: ``NoBackend`` with the tenant policy (its environment only; nothing is confined):
  the plain ``sh -c`` fork/exec cost through the tool, the baseline;
- ``bwrap`` and ``landlock`` with the tenant policy (the headline: added = backend - none);
- ``bwrap`` and ``landlock`` with the local policy (context: read everywhere, write the
  workspace and the host's temp folders);
- ``bare``: ``trio.run_process(["sh", "-c", "echo hi"])`` with no tool at all (context: what
  the tool itself adds to a fork/exec).

After ``--warm-up`` calls of each, the cases run round-robin, one call each per run (the order
rotated every run), so machine noise hits them all alike. Added latency is backend p50 - none
p50 (and p99 - p99). A backend that does not work here (``probe_bwrap`` / ``probe_landlock``)
is reported as skipped, with the reason, and is not a failure. Each call's output is checked.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio
from harness import emit_result, percentile, verdict

from openheim.config.sandbox_settings import SandboxSettings
from openheim.sandbox.bwrap import BwrapBackend
from openheim.sandbox.environment import local_env, tenant_env
from openheim.sandbox.landlock import LandlockBackend
from openheim.sandbox.policy import local_policy, tenant_policy
from openheim.sandbox.sandbox import Backend, NoBackend, Sandbox
from openheim.sandbox.select import probe_bwrap, probe_landlock
from openheim.tools.base import ToolContext
from openheim.tools.shell import ExecuteCommandTool

TARGET_ADDED_P50_MS = 15.0
COMMAND = "echo hi"
#: The backends held to the target (tenant policy); the local-policy cases are context.
HEADLINE = ("bwrap", "landlock")

Call = Callable[[], Awaitable[None]]


def tool_case(tool: ExecuteCommandTool, context: ToolContext) -> Call:
    async def call() -> None:
        result = await tool.call({"command": COMMAND}, context)
        if result.is_error or result.content.strip() != "hi":
            raise RuntimeError(f"{context.sandbox.name}: unexpected result {result}")

    return call


async def bare_call() -> None:
    done = await trio.run_process(["sh", "-c", COMMAND], capture_stdout=True)
    if done.stdout.strip() != b"hi":
        raise RuntimeError(f"bare sh -c: unexpected output {done.stdout!r}")


def cases(workspace: Path) -> tuple[dict[str, Call], dict[str, str]]:
    """(case name -> one timed call, backend -> why it is skipped)."""
    settings = SandboxSettings()
    tool = ExecuteCommandTool()
    tenant = tenant_policy([workspace], settings, tenant_env(os.environ, home=workspace))
    temps = [Path(tempfile.gettempdir()), Path("/tmp")]
    local = local_policy(
        [workspace],
        settings,
        local_env(os.environ, secrets=(), exclude=settings.env_exclude),
        temp_dirs=[t for t in dict.fromkeys(temps) if t.is_dir()],
    )
    backends: dict[str, Backend] = {}
    skipped: dict[str, str] = {}
    for name, probe, make in (
        ("bwrap", probe_bwrap, BwrapBackend),
        ("landlock", probe_landlock, LandlockBackend),
    ):
        reason = probe()
        if reason is None:
            backends[name] = make()
        else:
            skipped[name] = reason
    calls: dict[str, Call] = {
        "none": tool_case(tool, ToolContext(cwd=workspace, sandbox=Sandbox(NoBackend(), tenant)))
    }
    for name, backend in backends.items():
        calls[name] = tool_case(tool, ToolContext(cwd=workspace, sandbox=Sandbox(backend, tenant)))
    for name, backend in backends.items():
        context = ToolContext(cwd=workspace, sandbox=Sandbox(backend, local))
        calls[f"{name}_local"] = tool_case(tool, context)
    calls["bare"] = bare_call
    return calls, skipped


async def measure(calls: dict[str, Call], runs: int, warm_up: int) -> dict[str, list[float]]:
    """Milliseconds per call of every case."""
    names = list(calls)
    for _ in range(warm_up):
        for name in names:
            await calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for run in range(runs):
        shift = run % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            await calls[name]()
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warm-up", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="openheim-bench-") as folder:
        calls, skipped = cases(Path(os.path.realpath(folder)))
        times = trio.run(measure, calls, args.runs, args.warm_up)
    figures: dict[str, object] = {"runs": args.runs, "target_added_p50_ms": TARGET_ADDED_P50_MS}
    p50 = {name: percentile(values, 50) for name, values in times.items()}
    p99 = {name: percentile(values, 99) for name, values in times.items()}
    print(f'execute_command "{COMMAND}", {args.runs} runs each, round-robin:')
    for name in times:
        line = f"  {name:<15} p50 {p50[name]:6.2f} ms  p99 {p99[name]:6.2f} ms"
        if name not in ("none", "bare"):
            added50, added99 = p50[name] - p50["none"], p99[name] - p99["none"]
            line += f"  added p50 {added50:+6.2f} ms  p99 {added99:+6.2f} ms"
            figures[f"{name}_added_p50_ms"] = round(added50, 2)
            figures[f"{name}_added_p99_ms"] = round(added99, 2)
            if name in HEADLINE:
                line += f"  ({verdict(added50, TARGET_ADDED_P50_MS)} {TARGET_ADDED_P50_MS:g} ms)"
        print(line)
        figures[f"{name}_p50_ms"] = round(p50[name], 2)
        figures[f"{name}_p99_ms"] = round(p99[name], 2)
    for name, reason in skipped.items():
        print(f"  {name:<15} skipped: {reason}")
        figures[f"{name}_skipped"] = reason
    print(
        "none = the tool's plain sh -c fork/exec (tenant environment, nothing confined); "
        "*_local = the local policy; bare = sh -c with no tool"
    )
    emit_result("sandbox_overhead", **figures)


if __name__ == "__main__":
    main()
