"""Cold start: ``openheim --help``, ``openheim run`` from exec to the first LLM request, and a
whole one-shot prompt against Simon Willison's ``llm`` and the import floor.

Run with ``.venv/bin/python bench/cold_start.py [--runs 10]``. Everything is local: the fake
LLM server on 127.0.0.1 records when each request arrives and answers both CLIs. ``llm`` comes
from the peers' environment (``make bench`` builds ``.venv-peers`` from ``bench/peers.txt``);
without it the comparison is skipped. The one-shot commands run interleaved, so the machine's
noise hits each alike, and the verdict is a ratio within the run. openheim's bytecode is
compiled first, as installing a package does (``llm`` comes installed): under
``PYTHONDONTWRITEBYTECODE`` a source checkout would otherwise compile every module on every
start. The last line is ``RESULT {...}`` for ``run_all.py``.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from harness import emit_result

import openheim
from openheim.testing import Reply, Script, open_fake_llm

HELP_TARGET = 0.15
FIRST_REQUEST_TARGET = 0.3
#: ``openheim run "hi"``'s wall time at most this share of ``llm``'s (issue 19).
VS_LLM_TARGET = 0.4
PEERS_BIN = Path(__file__).resolve().parent.parent / ".venv-peers" / "bin"
FLOOR = "import trio, httpx, attrs, cattrs"


def compile_bytecode() -> None:
    """What ``pip install`` does: the timed starts read bytecode, never compile source."""
    compileall.compile_dir(Path(openheim.__file__).parent, quiet=1)


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


def write_llm_config(user_path: Path, base_url: str) -> None:
    """``llm``'s own way to reach an OpenAI-compatible endpoint, with a stored key."""
    (user_path / "extra-openai-models.yaml").write_text(
        f'- model_id: fake\n  model_name: m\n  api_base: "{base_url}"\n  api_key_name: fake\n'
    )
    (user_path / "keys.json").write_text('{"fake": "not-a-secret"}')


async def time_one_shots(runs: int, llm_bin: Path) -> dict[str, list[float]]:
    """Exec to exit for each command, interleaved run by run."""
    times: dict[str, list[float]] = {"openheim": [], "llm": [], "floor": []}
    async with open_fake_llm(Script([Reply.text("ok")], repeat=True)) as server:
        with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as llm_home:
            (Path(home) / "config.toml").write_text(
                'default_provider = "fake"\n[providers.fake]\n'
                f'api_base = "{server.base_url}"\ndefault_model = "m"\n'
            )
            write_llm_config(Path(llm_home), server.base_url)
            env = {**os.environ, "OPENHEIM_HOME": home, "LLM_USER_PATH": llm_home}
            commands = {
                "openheim": [sys.executable, "-m", "openheim", "run", "hi"],
                "llm": [str(llm_bin), "-m", "fake", "--no-log", "hi"],
                "floor": [sys.executable, "-c", FLOOR],
            }
            for command in commands.values():  # warm the page cache, check they work
                await trio.run_process(command, env=env, stdout=subprocess.DEVNULL)
            for _ in range(runs):
                for name, command in commands.items():
                    started = time.perf_counter()
                    await trio.run_process(command, env=env, stdout=subprocess.DEVNULL)
                    times[name].append(time.perf_counter() - started)
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
    compile_bytecode()
    help_times = time_help(args.runs)
    print(describe("openheim --help", help_times, HELP_TARGET))
    first_request = trio.run(time_first_request, args.runs)
    print(describe("openheim run → first request", first_request, FIRST_REQUEST_TARGET))
    figures: dict[str, float] = {}
    llm_bin = PEERS_BIN / "llm"
    if llm_bin.exists():
        shots = trio.run(time_one_shots, args.runs, llm_bin)
        medians = {name: statistics.median(values) for name, values in shots.items()}
        for name, median in medians.items():
            print(f"one-shot {name}: median {median * 1000:.0f} ms over {args.runs} runs")
        ratio = medians["openheim"] / medians["llm"]
        print(f"openheim / llm: {ratio:.2f} (target ≤ {VS_LLM_TARGET})")
        figures = {
            "one_shot_openheim_ms": round(medians["openheim"] * 1000, 1),
            "one_shot_llm_ms": round(medians["llm"] * 1000, 1),
            "one_shot_floor_ms": round(medians["floor"] * 1000, 1),
            "vs_llm_ratio": round(ratio, 3),
            "vs_llm_target": VS_LLM_TARGET,
        }
    else:
        print(f"no {llm_bin}: the comparison with llm is skipped (make bench builds it)")
    emit_result(
        "cold_start",
        runs=args.runs,
        help_median_ms=round(statistics.median(help_times) * 1000, 1),
        first_request_median_ms=round(statistics.median(first_request) * 1000, 1),
        help_target_ms=HELP_TARGET * 1000,
        first_request_target_ms=FIRST_REQUEST_TARGET * 1000,
        **figures,
    )


if __name__ == "__main__":
    main()
