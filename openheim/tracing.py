"""Optional OpenTelemetry traces of turns, provider requests and tool calls.

Only the OpenTelemetry API is used; whoever runs openheim configures the SDK and exporter
(``opentelemetry-instrument openheim serve``, or a ``TracerProvider`` set up before using the
library). Tracing is on when the API is installed and ``OPENHEIM_TRACING=1`` or a standard
``OTEL_*`` exporter variable is set; otherwise nothing is imported and spans cost nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from openheim.observe import Attributes, Observer, TurnReport

TRACING_ENV = "OPENHEIM_TRACING"
_OTEL_SIGNALS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def tracing_wanted(env: Mapping[str, str]) -> bool:
    flag = env.get(TRACING_ENV, "").strip().lower()
    if flag in ("0", "false", "off", "no"):
        return False
    return flag in ("1", "true", "on", "yes", "otel") or any(env.get(n) for n in _OTEL_SIGNALS)


def with_tracing(observer: Observer, env: Mapping[str, str]) -> Observer:
    """``observer`` with spans added when tracing is wanted and the API is installed."""
    if not tracing_wanted(env):
        return observer
    try:
        from opentelemetry import trace
    except ImportError:
        return observer
    return TracingObserver(observer, trace.get_tracer("openheim"))


class TracingObserver:
    """Spans from OpenTelemetry; every other report goes on to the wrapped observer."""

    def __init__(self, inner: Observer, tracer: Any) -> None:
        self.inner = inner
        self._tracer = tracer

    @contextlib.contextmanager
    def span(self, name: str, attributes: Attributes) -> Iterator[None]:
        with self._tracer.start_as_current_span(name, attributes=dict(attributes)):
            yield

    def provider_request(self, provider: str, model: str, outcome: str, seconds: float) -> None:
        from opentelemetry import trace

        trace.get_current_span().set_attribute("openheim.outcome", outcome)
        self.inner.provider_request(provider, model, outcome, seconds)

    def provider_retry(self, provider: str, model: str) -> None:
        self.inner.provider_retry(provider, model)

    def turn_finished(self, report: TurnReport) -> None:
        from opentelemetry import trace

        span = trace.get_current_span()
        span.set_attribute("openheim.stop_reason", report.stop_reason)
        span.set_attribute("gen_ai.usage.input_tokens", report.usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", report.usage.output_tokens)
        self.inner.turn_finished(report)

    def tool_call(self, *, tenant: str, tool: str, is_error: bool, seconds: float) -> None:
        self.inner.tool_call(tenant=tenant, tool=tool, is_error=is_error, seconds=seconds)

    def compaction(self, *, tenant: str, method: str, tokens_saved: int) -> None:
        self.inner.compaction(tenant=tenant, method=method, tokens_saved=tokens_saved)
