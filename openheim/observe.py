"""What the runtime reports as it works, for metrics and traces.

The runtime calls an ``Observer``; ``openheim serve`` gives one that feeds ``/metrics``, the
other faces the no-op ``NULL_OBSERVER``. A plain protocol keeps the metrics library out of
``run`` and the REPL (it is imported only by the server).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Protocol

import attrs

from openheim.foundation.models import Usage

#: Span attribute values (OpenTelemetry's primitive types).
Attributes = Mapping[str, str | int | float | bool]


@attrs.frozen
class TurnReport:
    """A finished turn, as metrics and traces see it."""

    tenant: str
    provider: str
    model: str
    stop_reason: str
    usage: Usage
    cost_usd: float | None
    seconds: float


class Observer(Protocol):
    def provider_request(self, provider: str, model: str, outcome: str, seconds: float) -> None:
        """One HTTP attempt ended; ``outcome`` is ``ok``, ``http_<status>``, ``network`` or
        ``error`` (a stream that broke, or garbage)."""

    def provider_retry(self, provider: str, model: str) -> None: ...

    def turn_finished(self, report: TurnReport) -> None: ...

    def tool_call(self, *, tenant: str, tool: str, is_error: bool, seconds: float) -> None: ...

    def compaction(self, *, tenant: str, method: str, tokens_saved: int) -> None:
        """A conversation's view was compacted (``openheim.agent.compaction``)."""
        ...

    def span(self, name: str, attributes: Attributes) -> AbstractContextManager[None]:
        """A traced stretch of work (a turn, a provider request, a tool call); entered and
        left in one task."""
        ...


class NullObserver:
    def provider_request(self, provider: str, model: str, outcome: str, seconds: float) -> None:
        pass

    def provider_retry(self, provider: str, model: str) -> None:
        pass

    def turn_finished(self, report: TurnReport) -> None:
        pass

    def tool_call(self, *, tenant: str, tool: str, is_error: bool, seconds: float) -> None:
        pass

    def compaction(self, *, tenant: str, method: str, tokens_saved: int) -> None:
        pass

    def span(self, name: str, attributes: Attributes) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


NULL_OBSERVER = NullObserver()
