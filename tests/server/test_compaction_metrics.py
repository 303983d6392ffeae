"""The compaction counters ``/metrics`` shows."""

from __future__ import annotations

from openheim.server.metrics import ServerMetrics


def test_compactions_and_tokens_saved_are_counted() -> None:
    metrics = ServerMetrics()
    metrics.compaction(tenant="t", method="summary", tokens_saved=4000)
    metrics.compaction(tenant="t", method="elide", tokens_saved=1500)
    metrics.compaction(tenant="t", method="summary", tokens_saved=0)
    text = metrics.render().decode()
    assert 'openheim_compactions_total{method="summary"} 2.0' in text
    assert 'openheim_compactions_total{method="elide"} 1.0' in text
    assert "openheim_compaction_tokens_saved_total 5500.0" in text
