"""Every benchmark, one after another; their ``RESULT`` lines become ``bench/RESULTS.md``.

Run with ``.venv/bin/python bench/run_all.py`` (``make bench``: full sizes, about 12 minutes
on 2 cores) or ``--quick`` (small sizes, a minute or two, to check that everything runs).
``--only NAME[,NAME]`` runs some of them. Each benchmark is its own process, so one that fails
is reported and the others still run; Ctrl-C stops the one running (it cleans up its own
servers) and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from targets import ROWS, Row

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"


@attrs.frozen
class Bench:
    name: str
    full: tuple[str, ...]
    quick: tuple[str, ...]


BENCHES = (
    Bench("cold_start", ("--runs", "10"), ("--runs", "3")),
    Bench("memory", (), ("--sessions", "200,1000", "--connections", "4")),
    Bench("throughput", (), ("--clients", "20,100", "--chunks", "100")),
    Bench("loop_overhead", (), ("--turns", "500", "--http-turns", "50")),
    Bench("cancel_latency", ("--runs", "100"), ("--runs", "10")),
    Bench("sandbox_overhead", ("--runs", "300"), ("--runs", "30")),
    Bench("soak", (), ("--lifecycles", "300", "--warm-up", "50")),
)


@attrs.define
class Outcome:
    bench: Bench
    args: tuple[str, ...]
    seconds: float
    returncode: int
    result: dict[str, Any] | None


# --- running ---------------------------------------------------------------------------------


def run(bench: Bench, args: tuple[str, ...]) -> Outcome:
    """Run one benchmark, echoing its output, and pick out its last ``RESULT`` line."""
    command = [sys.executable, str(BENCH_DIR / f"{bench.name}.py"), *args]
    print(f"\n== {bench.name} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    result = None
    try:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.startswith("RESULT "):
                result = json.loads(line.removeprefix("RESULT "))
        returncode = process.wait()
    except KeyboardInterrupt:
        # The child got the same SIGINT (same process group) and is shutting its servers down.
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    seconds = time.perf_counter() - started
    if returncode != 0:
        print(f"!! {bench.name} failed (exit {returncode})", flush=True)
    return Outcome(bench, args, seconds, returncode, result)


# --- the machine -----------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def load_average() -> str:
    """The 1-minute load average: how busy the machine was besides the benchmarks."""
    return _read("/proc/loadavg").split(" ", 1)[0] or "unknown"


def machine() -> list[tuple[str, str]]:
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo"), re.M)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)', _read("/etc/os-release"), re.M)
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    return [
        ("CPU", cpu.group(1) if cpu else platform.processor() or "unknown"),
        ("Cores", str(os.cpu_count())),
        ("RAM", f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "unknown"),
        ("OS", f"{os_name.group(1) if os_name else platform.system()}, {platform.release()}"),
        ("Python", platform.python_version()),
        ("openheim commit", commit),
    ]


# --- the table -------------------------------------------------------------------------------


def table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cells) + " |" for cells in rows)
    return lines


def httpx_section(r: dict[str, Any]) -> list[str]:
    """openheim against a bare httpx client reading the same streams: the headline ratios."""
    rows = []
    for n in r["clients"]:
        rows.append(
            [
                f"{n:,}",
                f"{r[f'n{n}_chunks_per_s']:,} / {r[f'n{n}_httpx_chunks_per_s']:,}",
                f"{r[f'n{n}_throughput_ratio']:.2f}",
                f"{r[f'n{n}_p50_ms']:.2f} / {r[f'n{n}_httpx_p50_ms']:.2f} ms",
                f"{r[f'n{n}_p99_ms']:.2f} / {r[f'n{n}_httpx_p99_ms']:.2f} ms",
                f"{r[f'n{n}_latency_ratio_p99']:.1f}",
                f"{r[f'n{n}_peak_streams']} / {r[f'n{n}_httpx_peak_streams']}",
                ", ".join(f"{k} {v:.0%}" for k, v in r[f"n{n}_cpu_saturated"].items()),
            ]
        )
    header = [
        "clients",
        "chunks/s openheim / httpx",
        "throughput ratio",
        "latency p50 openheim / httpx",
        "latency p99 openheim / httpx",
        "p99 ratio",
        "peak streams at the LLM",
        "CPU, openheim saturated pass",
    ]
    capped = [
        f"{r[f'n{n}_peak_streams']} streams at once for {n:,} clients"
        for n in r["clients"]
        if r[f"n{n}_peak_streams"] < n
    ]
    pool_note = (
        [
            "",
            f"Fewer streams than clients were open at the LLM at once ({'; '.join(capped)}): "
            "the first streams had ended before the last turns reached the model, which "
            "happens when the server is saturated while a thousand sessions start.",
        ]
        if capped
        else []
    )
    return [
        "## openheim vs. bare httpx (streaming)",
        "",
        f"{r['chunks']} chunks per reply. Throughput from the saturated pass (the fake LLM "
        "streams as fast as it can); latencies from the paced pass "
        f"({r['chunk_delay_ms']:g} ms between chunks per stream), measured from the fake LLM's "
        "send to the client's receipt. httpx = N plain streams with openheim's own client "
        "factory (same connection pool), reading the SSE directly.",
        "",
        *table(header, rows),
        *pool_note,
    ]


def write_results(outcomes: list[Outcome], quick: bool, load_before: str) -> None:
    rows: list[Row] = []
    failures = []
    for outcome in outcomes:
        if outcome.result is None or outcome.returncode != 0:
            failures.append(outcome.bench.name)
            rows.append(Row(outcome.bench.name, "(failed: see its output)", "—", "—", False))
            continue
        rows.extend(ROWS[outcome.bench.name](outcome.result))
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick (small sizes: a smoke run, not the figures)" if quick else "full"
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `bench/run_all.py{' --quick' if quick else ''}` on {now}; mode: {mode}.",
        "",
        "## Machine",
        "",
        *(f"- **{key}**: {value}" for key, value in machine()),
        f"- **Load average** (1 min) before / after the runs: {load_before} / {load_average()}",
        "- Everything ran on this machine: the fake LLM, `openheim serve` and the benchmark's",
        "  clients share its cores, so the streaming figures are a floor.",
        "",
        "## Figures",
        "",
        *table(["benchmark", "figure", "measured", "target", "met?"], [r.cells() for r in rows]),
        "",
    ]
    throughput = next((o.result for o in outcomes if o.bench.name == "throughput"), None)
    if throughput is not None:
        lines.extend([*httpx_section(throughput), ""])
    lines.extend(["## Runs", ""])
    lines.extend(
        table(
            ["benchmark", "command", "time", "exit"],
            [
                [
                    o.bench.name,
                    "`" + " ".join([f"bench/{o.bench.name}.py", *o.args]) + "`",
                    f"{o.seconds:.0f} s",
                    str(o.returncode),
                ]
                for o in outcomes
            ],
        )
    )
    missed = [f"{r.bench}: {r.figure}" for r in rows if r.met is False]
    lines.extend(["", "## Notes / profile", ""])
    if missed:
        lines.append("Missed targets (to be explained here, with a profile):")
        lines.append("")
        lines.extend(f"- {item}" for item in missed)
        lines.append("")
    lines.append("_(for a human to fill in: causes of misses, profiles, follow-ups)_")
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"\nwrote {RESULTS.relative_to(REPO)}" + (f"; failed: {failures}" if failures else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it all runs")
    parser.add_argument("--only", help="comma-separated benchmark names")
    args = parser.parse_args()
    chosen = BENCHES
    if args.only:
        names = {name.strip() for name in args.only.split(",")}
        unknown = names - {bench.name for bench in BENCHES}
        if unknown:
            parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
        chosen = tuple(bench for bench in BENCHES if bench.name in names)
    outcomes = []
    load_before = load_average()
    try:
        for bench in chosen:
            outcomes.append(run(bench, bench.quick if args.quick else bench.full))
    except KeyboardInterrupt:
        print("\ninterrupted: RESULTS.md not written", file=sys.stderr)
        return 130
    write_results(outcomes, args.quick, load_before)
    return 0 if all(o.returncode == 0 and o.result is not None for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
