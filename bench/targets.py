"""Each benchmark's ``RESULT`` as rows of ``bench/RESULTS.md``: the figure, what was measured,
the target it is held to and whether it was met. ``run_all.py`` writes the table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs


@attrs.frozen
class Row:
    bench: str
    figure: str
    measured: str
    target: str = "—"
    met: bool | None = None

    def cells(self) -> list[str]:
        met = "—" if self.met is None else ("yes" if self.met else "**no**")
        return [self.bench, self.figure, self.measured, self.target, met]


def _at_most(value: float, target: float) -> bool:
    return value <= target


def cold_start_rows(r: dict[str, Any]) -> Iterable[Row]:
    yield Row(
        "cold_start",
        "`openheim --help` (median)",
        f"{r['help_median_ms']:.0f} ms",
        f"≤ {r['help_target_ms']:.0f} ms",
        _at_most(r["help_median_ms"], r["help_target_ms"]),
    )
    yield Row(
        "cold_start",
        "`openheim run` → first LLM request (median)",
        f"{r['first_request_median_ms']:.0f} ms",
        f"≤ {r['first_request_target_ms']:.0f} ms",
        _at_most(r["first_request_median_ms"], r["first_request_target_ms"]),
    )
    if "vs_llm_ratio" in r:
        yield Row(
            "cold_start",
            'one-shot `run "hi"` wall time (median): openheim / `llm` / import floor',
            f"{r['one_shot_openheim_ms']:.0f} / {r['one_shot_llm_ms']:.0f} / "
            f"{r['one_shot_floor_ms']:.0f} ms",
        )
        yield Row(
            "cold_start",
            "one-shot wall time, openheim ÷ `llm` (same run)",
            f"{r['vs_llm_ratio']:.2f}",
            f"≤ {r['vs_llm_target']}",
            _at_most(r["vs_llm_ratio"], r["vs_llm_target"]),
        )


def memory_rows(r: dict[str, Any]) -> Iterable[Row]:
    yield Row("memory", "server RSS, idle", f"{r['idle_rss_mib']:.1f} MiB")
    target = r["target_kb_per_session"]
    keys = [k for k in r if k.startswith("kb_per_session_")]
    for key in sorted(keys, key=lambda k: int(k.rsplit("_", 1)[1])):
        size = int(key.rsplit("_", 1)[1])
        yield Row(
            "memory",
            f"RSS per idle ACP session, {size:,} sessions",
            f"{r[key]:.1f} KB",
            f"≤ {target:g} KB",
            _at_most(r[key], target),
        )


def throughput_rows(r: dict[str, Any]) -> Iterable[Row]:
    target = r["target_p99_ms"]
    for n in r["clients"]:
        bare = r[f"n{n}_httpx_chunks_per_s"]
        yield Row(
            "throughput",
            f"chunks relayed/s, {n:,} clients, saturated (bare httpx: {bare:,})",
            f"{r[f'n{n}_chunks_per_s']:,}",
        )
        yield Row(
            "throughput",
            f"added latency p50 / p99, {n:,} clients, paced {r['chunk_delay_ms']:g} ms/chunk",
            f"{r[f'n{n}_added_p50_ms']:.2f} / {r[f'n{n}_added_p99_ms']:.2f} ms",
            f"p99 ≤ {target:g} ms",
            _at_most(r[f"n{n}_added_p99_ms"], target),
        )


def loop_overhead_rows(r: dict[str, Any]) -> Iterable[Row]:
    target = r["target_ms"]
    yield Row(
        "loop_overhead",
        "per turn, `Turn` (1 tool call, 2 model calls)",
        f"{r['turn_ms']:.3f} ms",
        f"≤ {target:g} ms",
        _at_most(r["turn_ms"], target),
    )
    yield Row(
        "loop_overhead",
        "per turn, `Session` (actor, fan-out), no store",
        f"{r['session_ms']:.3f} ms",
        f"≤ {target:g} ms",
        _at_most(r["session_ms"], target),
    )
    yield Row(
        "loop_overhead",
        "per turn, `Session` + JSON file history (context)",
        f"{r['session_files_ms']:.3f} ms",
    )
    if "http_ms" in r:
        yield Row(
            "loop_overhead",
            "whole turn via HTTP to the fake LLM (context)",
            f"{r['http_ms']:.2f} ms",
        )


def cancel_latency_rows(r: dict[str, Any]) -> Iterable[Row]:
    target = r["target_p99_ms"]
    runs = r["runs"]
    for mode in r["modes"]:
        backend = r[f"{mode}_backend"]
        sandbox = f"sandbox {mode}" + (f" ({backend})" if backend != mode else "")
        yield Row(
            "cancel_latency",
            f"cancel → prompt answers `cancelled`, p50 / p99, {sandbox}, {runs} runs",
            f"{r[f'{mode}_answer_p50_ms']:.1f} / {r[f'{mode}_answer_p99_ms']:.1f} ms",
        )
        yield Row(
            "cancel_latency",
            f"cancel → no process of the command left, p50 / p99, {sandbox}, {runs} runs",
            f"{r[f'{mode}_gone_p50_ms']:.1f} / {r[f'{mode}_gone_p99_ms']:.1f} ms",
        )
        yield Row(
            "cancel_latency",
            f"cancel → both, p99, {sandbox}",
            f"{r[f'{mode}_p99_ms']:.1f} ms",
            f"≤ {target:g} ms",
            _at_most(r[f"{mode}_p99_ms"], target),
        )


def sandbox_overhead_rows(r: dict[str, Any]) -> Iterable[Row]:
    runs = r["runs"]
    yield Row(
        "sandbox_overhead",
        f'`execute_command "echo hi"`, no sandbox (plain `sh -c`), p50 / p99 ({runs} runs)',
        f"{r['none_p50_ms']:.2f} / {r['none_p99_ms']:.2f} ms",
    )
    yield Row(
        "sandbox_overhead",
        '`sh -c "echo hi"` alone, without the tool, p50 / p99 (context)',
        f"{r['bare_p50_ms']:.2f} / {r['bare_p99_ms']:.2f} ms",
    )
    target = r["target_added_p50_ms"]
    for backend in ("bwrap", "landlock"):
        for case, policy in ((backend, "tenant"), (f"{backend}_local", "local")):
            headline = policy == "tenant"
            figure = f"added by {backend}, {policy} policy, p50 / p99"
            if f"{backend}_skipped" in r:
                if headline:
                    yield Row("sandbox_overhead", figure, f"skipped: {r[f'{backend}_skipped']}")
                continue
            total = f"total {r[f'{case}_p50_ms']:.2f} / {r[f'{case}_p99_ms']:.2f} ms"
            yield Row(
                "sandbox_overhead",
                f"{figure} ({total})" if headline else f"{figure} ({total}; context)",
                f"{r[f'{case}_added_p50_ms']:.2f} / {r[f'{case}_added_p99_ms']:.2f} ms",
                f"p50 ≤ {target:g} ms" if headline else "—",
                _at_most(r[f"{case}_added_p50_ms"], target) if headline else None,
            )


def soak_rows(r: dict[str, Any]) -> Iterable[Row]:
    n = r["lifecycles"]
    yield Row(
        "soak",
        f"server RSS growth over {n:,} lifecycles ({r['lifecycles_per_s']:g}/s)",
        f"{r['rss_growth_mb']:+.2f} MB",
        f"≤ {r['target_rss_mb']:g} MB",
        _at_most(r["rss_growth_mb"], r["target_rss_mb"]),
    )
    yield Row(
        "soak",
        f"server open descriptors growth over {n:,} lifecycles",
        f"{r['fd_growth']:+d}",
        f"{r['target_fds']}",
        _at_most(r["fd_growth"], r["target_fds"]),
    )


ROWS: dict[str, Callable[[dict[str, Any]], Iterable[Row]]] = {
    "cold_start": cold_start_rows,
    "memory": memory_rows,
    "throughput": throughput_rows,
    "loop_overhead": loop_overhead_rows,
    "cancel_latency": cancel_latency_rows,
    "sandbox_overhead": sandbox_overhead_rows,
    "soak": soak_rows,
}
