"""Cold start: ``openheim --help``, and ``openheim run`` from exec to the first LLM request.

Run with ``.venv/bin/python bench/cold_start.py [--runs 10]``. Everything is local: the fake
LLM server on 127.0.0.1 records when each request arrives. The last line is ``RESULT {...}``
for ``run_all.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from harness import emit_result

from openheim.testing import Reply, Script, open_fake_llm

HELP_TARGET = 0.15
FIRST_REQUEST_TARGET = 0.3


def time_help(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "openheim", "--help"], check=True, stdout=subprocess.DEVNULL
        )
        times.append(time.perf_counter() - started)
    return times


async def time_first_request(runs: int) -> list[float]:
    times = []
    async with open_fake_llm(Script([Reply.text("ok")], repeat=True)) as llm:
        with tempfile.TemporaryDirectory() as home:
            (Path(home) / "config.toml").write_text(
                'default_provider = "fake"\n[providers.fake]\n'
                f'api_base = "{llm.base_url}"\ndefault_model = "m"\n'
            )
            env = {**os.environ, "OPENHEIM_HOME": home}
            for _ in range(runs):
                seen = len(llm.requests)
                started = time.monotonic()
                await trio.run_process(
                    [sys.executable, "-m", "openheim", "run", "hi"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
                times.append(llm.requests[seen].received_at - started)
    return times


def describe(name: str, times: list[float], target: float) -> str:
    median = statistics.median(times)
    verdict = "meets" if median <= target else "MISSES"
    return (
        f"{name}: median {median * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms over {len(times)} runs ({verdict} {target * 1000:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    help_times = time_help(args.runs)
    print(describe("openheim --help", help_times, HELP_TARGET))
    first_request = trio.run(time_first_request, args.runs)
    print(describe("openheim run → first request", first_request, FIRST_REQUEST_TARGET))
    emit_result(
        "cold_start",
        runs=args.runs,
        help_median_ms=round(statistics.median(help_times) * 1000, 1),
        first_request_median_ms=round(statistics.median(first_request) * 1000, 1),
        help_target_ms=HELP_TARGET * 1000,
        first_request_target_ms=FIRST_REQUEST_TARGET * 1000,
    )


if __name__ == "__main__":
    main()
