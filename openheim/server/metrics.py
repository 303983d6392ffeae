"""``GET /metrics``: Prometheus counters fed by the runtime, gauges read at scrape time.

Events (provider requests, turns, tokens, cost, tool calls) arrive through the ``Observer``
protocol and update counters and histograms in a registry of this server's own (never the
library's global one). Live state (sessions, running turns, connections, queued frames, MCP
servers) is read from the server when Prometheus scrapes, so nothing has to be kept in step.
"""

from __future__ import annotations

import contextlib
from collections import Counter as Tally
from collections.abc import Iterator, Set
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from openheim import __version__
from openheim.observe import Attributes, TurnReport

if TYPE_CHECKING:
    from openheim.mcp.supervisor import McpSupervisor
    from openheim.server.acp_http_connection import HttpConnection
    from openheim.server.tenants import Tenants
    from openheim.server.ws import Connection

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
#: The values of the ``transport`` label.
TRANSPORTS = ("websocket", "http")
_TOOL_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 600)


class LiveServer(Protocol):
    """What the gauges read at each scrape (``ServerState`` is one): only this, so the
    metrics never import the state that holds them."""

    @property
    def tenants(self) -> Tenants: ...

    @property
    def connections(self) -> Set[Connection | HttpConnection]: ...

    @property
    def mcp(self) -> McpSupervisor | None: ...


class ServerMetrics:
    """The server's ``Observer``, and the registry ``/metrics`` renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.provider_requests = Counter(
            "openheim_provider_requests",
            "HTTP requests to LLM providers, each attempt counted, by outcome",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.provider_retries = Counter(
            "openheim_provider_retries",
            "Provider requests retried after a transient failure",
            ["provider", "model"],
            registry=r,
        )
        self.provider_seconds = Histogram(
            "openheim_provider_request_seconds",
            "Duration of provider requests, from sending to the end of the stream",
            ["provider", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.turns = Counter(
            "openheim_turns",
            "Finished turns by stop reason",
            ["tenant", "provider", "model", "stop_reason"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "openheim_turn_seconds",
            "Duration of turns",
            ["tenant"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "openheim_tokens",
            "Tokens reported by providers",
            ["tenant", "provider", "model", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "openheim_cost_usd",
            "Cost in US dollars, where [providers.X.prices] gives the model's prices",
            ["tenant", "provider", "model"],
            registry=r,
        )
        self.tool_calls = Counter(
            "openheim_tool_calls",
            "Tool calls by outcome",
            ["tenant", "tool", "outcome"],
            registry=r,
        )
        self.tool_seconds = Histogram(
            "openheim_tool_call_seconds",
            "Duration of tool calls",
            ["tool"],
            buckets=_TOOL_BUCKETS,
            registry=r,
        )
        self.compactions = Counter(
            "openheim_compactions",
            "Conversations compacted to fit the model's window, by the most severe step taken",
            ["method"],
            registry=r,
        )
        self.compaction_tokens_saved = Counter(
            "openheim_compaction_tokens_saved",
            "Prompt tokens compaction took out of the next request (estimated)",
            registry=r,
        )

    def watch(self, state: LiveServer) -> None:
        """Add the gauges read from the live server at each scrape."""
        self.registry.register(_LiveState(state))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --- the Observer ----------------------------------------------------------------------

    def provider_request(self, provider: str, model: str, outcome: str, seconds: float) -> None:
        self.provider_requests.labels(provider, model, outcome).inc()
        if outcome != "cancelled":
            self.provider_seconds.labels(provider, model).observe(seconds)

    def provider_retry(self, provider: str, model: str) -> None:
        self.provider_retries.labels(provider, model).inc()

    def turn_finished(self, report: TurnReport) -> None:
        tenant, provider, model = report.tenant, report.provider, report.model
        usage = report.usage
        self.turns.labels(tenant, provider, model, report.stop_reason).inc()
        self.turn_seconds.labels(tenant).observe(report.seconds)
        for kind, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
        ):
            if count:
                self.tokens.labels(tenant, provider, model, kind).inc(count)
        if report.cost_usd:
            self.cost.labels(tenant, provider, model).inc(report.cost_usd)

    def tool_call(self, *, tenant: str, tool: str, is_error: bool, seconds: float) -> None:
        self.tool_calls.labels(tenant, tool, "error" if is_error else "ok").inc()
        self.tool_seconds.labels(tool).observe(seconds)

    def compaction(self, *, tenant: str, method: str, tokens_saved: int) -> None:
        self.compactions.labels(method).inc()
        if tokens_saved > 0:
            self.compaction_tokens_saved.inc(tokens_saved)

    def span(self, name: str, attributes: Attributes) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # traces are the tracing wrapper's (openheim.tracing)


class _LiveState(Collector):
    def __init__(self, state: LiveServer) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state
        info = GaugeMetricFamily("openheim_info", "The running openheim", labels=["version"])
        info.add_metric([__version__], 1)
        yield info

        sessions = GaugeMetricFamily(
            "openheim_sessions_open", "Live sessions (idle or busy)", labels=["tenant"]
        )
        running = GaugeMetricFamily(
            "openheim_turns_running", "Turns running now", labels=["tenant"]
        )
        for tenant in state.tenants.live():
            live = tenant.registry.sessions()
            sessions.add_metric([tenant.name], len(live))
            running.add_metric([tenant.name], sum(1 for session in live if session.busy))
        yield sessions
        yield running

        connections: Tally[str] = Tally()
        queued: Tally[str] = Tally()
        by_transport: Tally[tuple[str, str]] = Tally()
        for connection in state.connections:
            by_transport[connection.tenant.name, connection.transport] += 1
            if connection.transport != "websocket":
                continue
            connections[connection.tenant.name] += 1
            queued[connection.tenant.name] += connection.queued()
        sockets = GaugeMetricFamily(
            "openheim_ws_connections", "Open WebSocket connections", labels=["tenant"]
        )
        depth = GaugeMetricFamily(
            "openheim_ws_outbound_queue_frames",
            "Frames waiting to be written to clients (bounded per connection)",
            labels=["tenant"],
        )
        # Every tenant the server knows, so a gauge drops to 0 instead of vanishing when its
        # last connection closes (a vanished series reads as "no data", not "none open").
        known = {tenant.name for tenant in state.tenants.live()} | set(connections)
        for name in sorted(known):
            sockets.add_metric([name], connections[name])
            depth.add_metric([name], queued[name])
        yield sockets
        yield depth
        yield _by_transport(known, by_transport)

        yield from _mcp_metrics(state)
        yield from _memory_metrics(state)


def _by_transport(tenants: Set[str], open_now: Tally[tuple[str, str]]) -> Metric:
    """Connections of every transport: WebSocket (``/ws``, ``/acp``) and HTTP (``/acp``)."""
    gauge = GaugeMetricFamily(
        "openheim_connections", "Open ACP connections by transport", labels=["tenant", "transport"]
    )
    for name in sorted(tenants | {tenant for tenant, _ in open_now}):
        for transport in TRANSPORTS:
            gauge.add_metric([name, transport], open_now[name, transport])
    return gauge


def _mcp_metrics(state: LiveServer) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "openheim_mcp_server_up", "1 if the MCP server is connected", labels=["server"]
    )
    tools = GaugeMetricFamily(
        "openheim_mcp_server_tools", "Tools the MCP server offers", labels=["server"]
    )
    restarts = CounterMetricFamily(
        "openheim_mcp_server_restarts", "Times the MCP server was started again", labels=["server"]
    )
    supervisor = state.mcp
    if supervisor is not None:
        for row in supervisor.describe():
            up.add_metric([row["name"]], 1 if row["connected"] else 0)
            tools.add_metric([row["name"]], row["tool_count"])
            restarts.add_metric([row["name"]], row["restarts"])
    yield up
    yield tools
    yield restarts


def _memory_metrics(state: LiveServer) -> Iterator[Metric]:
    """``[server] max_rss_mb``'s work: sessions evicted and requests refused as busy."""
    evictions = CounterMetricFamily(
        "openheim_sessions_evicted",
        "Idle sessions saved and closed to bring memory under [server] max_rss_mb",
    )
    refusals = CounterMetricFamily(
        "openheim_busy_refusals",
        "Requests refused as busy because memory stayed over [server] max_rss_mb",
    )
    budget = state.tenants.memory
    evictions.add_metric([], budget.evictions if budget is not None else 0)
    refusals.add_metric([], budget.refusals if budget is not None else 0)
    yield evictions
    yield refusals
