"""OpenTelemetry spans for a tool-using turn, when tracing is asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from openheim import OpenheimClient
from openheim.observe import NULL_OBSERVER
from openheim.testing import Reply, open_fake_llm
from openheim.tracing import TracingObserver, tracing_wanted, with_tracing

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(tracer_provider)  # once per process: the API allows one


def test_tracing_is_off_unless_asked() -> None:
    assert not tracing_wanted({})
    assert tracing_wanted({"OPENHEIM_TRACING": "1"})
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert not tracing_wanted({"OPENHEIM_TRACING": "0", "OTEL_TRACES_EXPORTER": "otlp"})
    assert with_tracing(NULL_OBSERVER, {}) is NULL_OBSERVER
    assert isinstance(with_tracing(NULL_OBSERVER, {"OPENHEIM_TRACING": "1"}), TracingObserver)


async def test_a_turn_is_one_trace_with_provider_and_tool_spans(tmp_path: Path) -> None:
    EXPORTER.clear()
    async with open_fake_llm(
        [Reply.tool_call("execute_command", {"command": "echo traced"}), Reply.text("Done.")]
    ) as llm:
        (tmp_path / "config.toml").write_text(
            f'default_provider = "fake"\n[providers.fake]\napi_base = "{llm.base_url}"\n'
            'default_model = "m"\napi_key = "k"\n'
        )
        env = {"OPENHEIM_HOME": str(tmp_path), "OPENHEIM_TRACING": "1"}
        async with OpenheimClient.open(env=env) as client:
            session = await client.new_session(cwd=tmp_path, allow_all_tools=True)
            await session.prompt("trace me")
    spans = {span.name: span for span in EXPORTER.get_finished_spans()}
    turn, tool = spans["openheim.turn"], spans["openheim.tool_call"]
    requests = [s for s in EXPORTER.get_finished_spans() if s.name == "openheim.provider_request"]
    assert len(requests) == 2
    assert all(s.parent is not None and s.parent.span_id == turn.context.span_id for s in requests)
    assert tool.parent is not None and tool.parent.span_id == turn.context.span_id
    assert tool.attributes["openheim.tool"] == "execute_command"
    assert turn.attributes["openheim.stop_reason"] == "end_turn"
    assert turn.attributes["gen_ai.usage.input_tokens"] == 20
    assert requests[0].attributes["openheim.outcome"] == "ok"
