"""Merging the workers' Prometheus texts: one family per name, every sample labelled."""

from __future__ import annotations

from pathlib import Path

from openheim.server.worker_metrics import WorkerShare, merge

ONE = """# HELP openheim_turns_total Finished turns
# TYPE openheim_turns_total counter
openheim_turns_total{tenant="a"} 2.0
# HELP openheim_up Whether it runs
# TYPE openheim_up gauge
openheim_up 1.0
"""
TWO = """# HELP openheim_turns_total Finished turns
# TYPE openheim_turns_total counter
openheim_turns_total{tenant="a"} 5.0
openheim_turns_total{} 1.0
"""


def test_families_stay_together_and_each_sample_names_its_worker() -> None:
    assert merge([("0", ONE), ("1", TWO)]).splitlines() == [
        "# HELP openheim_turns_total Finished turns",
        "# TYPE openheim_turns_total counter",
        'openheim_turns_total{worker="0",tenant="a"} 2.0',
        'openheim_turns_total{worker="1",tenant="a"} 5.0',
        'openheim_turns_total{worker="1"} 1.0',
        "# HELP openheim_up Whether it runs",
        "# TYPE openheim_up gauge",
        'openheim_up{worker="0"} 1.0',
    ]


async def test_a_scrape_reads_every_workers_file_and_no_partial_one(tmp_path: Path) -> None:
    (tmp_path / "worker-1.prom").write_text(TWO)
    (tmp_path / "worker-1.prom.123.tmp").write_text("half a fi")
    merged = (await WorkerShare(tmp_path, 0).render(ONE.encode())).decode()
    assert 'openheim_up{worker="0"} 1.0' in merged
    assert 'openheim_turns_total{worker="1",tenant="a"} 5.0' in merged
    assert "half" not in merged
    assert (tmp_path / "worker-0.prom").read_text() == ONE
