"""One behavioural contract, every provider: the same script played in each wire format must
come out as the same internal events. A new provider is one entry in ``KINDS``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import trio

from openheim.config.model import ProviderConfig, ProviderKind
from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Message, ToolCall, ToolDefinition, ToolResult, Usage
from openheim.providers.base import (
    ChatRequest,
    FinishReason,
    ProviderEvent,
    Retrying,
    StreamEnd,
    TextDelta,
)
from openheim.providers.client import ProviderClient, open_provider
from openheim.testing import FakeLLMServer, HttpError, Reply, open_fake_llm

KINDS = {
    "openai": (ProviderKind.OPENAI, "/v1"),
    "openai_compatible": (ProviderKind.OPENAI_COMPATIBLE, "/v1"),
    "anthropic": (ProviderKind.ANTHROPIC, "/v1"),
    "gemini": (ProviderKind.GEMINI, "/v1beta"),
    "openai_responses": (ProviderKind.OPENAI_RESPONSES, "/v1"),
}

ECHO = ToolDefinition(
    "echo",
    "Echo a text back.",
    {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "What to echo."}},
        "required": ["text"],
        "additionalProperties": False,
    },
)
REQUEST = ChatRequest(
    model="model-x",
    messages=(Message.system("Be brief."), Message.user("hi")),
    tools=(ECHO,),
    max_tokens=256,
)


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    async with open_fake_llm() as server:
        yield server


@pytest.fixture
async def client(kind: str, llm: FakeLLMServer) -> AsyncIterator[ProviderClient]:
    provider_kind, prefix = KINDS[kind]
    config = ProviderConfig(
        name=kind,
        kind=provider_kind,
        api_base=llm.url + prefix,
        default_model="model-x",
        models=("model-x",),
        max_retries=2,
        retry_initial_delay_secs=0.01,
        timeout_secs=0.5,
    )
    async with open_provider(config, "key-123") as provider:
        yield provider


async def collect(client: ProviderClient, request: ChatRequest = REQUEST) -> list[ProviderEvent]:
    with trio.fail_after(10):
        async with client.stream(request) as stream:
            return [event async for event in stream]


def end_of(events: list[ProviderEvent]) -> StreamEnd:
    ends = [e for e in events if isinstance(e, StreamEnd)]
    assert len(ends) == 1 and events[-1] is ends[0]
    return ends[0]


def calls_of(end: StreamEnd) -> list[tuple[str, dict[str, object]]]:
    return [(call.name, json.loads(call.arguments)) for call in end.tool_calls]


async def test_plain_answer(client: ProviderClient, llm: FakeLLMServer) -> None:
    llm.script.append(Reply.text("Hello there, world!", pieces=4))
    events = await collect(client)
    end = end_of(events)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there, world!"
    assert end.text == "Hello there, world!"
    assert end.tool_calls == ()
    assert end.finish_reason is FinishReason.STOP


async def test_single_tool_call_with_fragments(client: ProviderClient, llm: FakeLLMServer) -> None:
    arguments = {"text": "a long argument " * 8}
    llm.script.append(Reply.tool_call("echo", arguments, fragments=9))
    events = await collect(client)
    end = end_of(events)
    assert end.finish_reason is FinishReason.TOOL_CALLS
    assert calls_of(end) == [("echo", arguments)]


async def test_parallel_tool_calls(client: ProviderClient, llm: FakeLLMServer) -> None:
    llm.script.append(
        Reply.tool_calls(
            [("c1", "echo", {"text": "one"}), ("c2", "echo", {"text": "two"})],
            fragments=3,
            text="Both:",
        )
    )
    end = end_of(await collect(client))
    assert end.text == "Both:"
    assert calls_of(end) == [("echo", {"text": "one"}), ("echo", {"text": "two"})]
    assert len({call.id for call in end.tool_calls}) == 2


async def test_usage_is_normalised(client: ProviderClient, llm: FakeLLMServer) -> None:
    usage = Usage(input_tokens=1200, output_tokens=34, cache_read_tokens=1000)
    llm.script.append(Reply.text("cached", usage=usage))
    assert end_of(await collect(client)).usage == usage


async def test_max_tokens_stop(client: ProviderClient, llm: FakeLLMServer) -> None:
    llm.script.append(Reply.text("cut of", finish_reason="length"))
    assert end_of(await collect(client)).finish_reason is FinishReason.LENGTH


async def test_a_whole_tool_exchange_is_accepted(
    client: ProviderClient, llm: FakeLLMServer
) -> None:
    """The fake server validates each format's rules (roles, tool results, schemas)."""
    call = ToolCall("call_9", "echo", '{"text": "x"}')
    request = ChatRequest(
        model="model-x",
        messages=(
            Message.system("Be brief."),
            Message.user("echo x"),
            Message.assistant("Calling.", (call,)),
            Message.tool(call, ToolResult("x")),
            Message.user("and again?"),
        ),
        tools=(ECHO,),
    )
    llm.script.append(Reply.text("done"))
    assert end_of(await collect(client, request)).text == "done"
    assert len(llm.requests) == 1


async def test_key_is_sent_in_a_header_never_the_url(
    client: ProviderClient, llm: FakeLLMServer
) -> None:
    llm.script.append(Reply.text("ok"))
    await collect(client)
    recorded = llm.requests[0]
    assert "key-123" in " ".join(recorded.headers.values())
    assert "key-123" not in recorded.path + recorded.query


async def test_429_retry_after_then_success(client: ProviderClient, llm: FakeLLMServer) -> None:
    llm.script.extend([HttpError(429, retry_after=0.3), Reply.text("ok")])
    events = await collect(client)
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [(r.error.status, r.delay) for r in retries] == [(429, 0.3)]
    assert end_of(events).text == "ok"
    assert llm.requests[1].received_at - llm.requests[0].received_at >= 0.25


@pytest.mark.parametrize("status", [500, 502, 503, 529])
async def test_server_errors_are_retried(
    client: ProviderClient, llm: FakeLLMServer, status: int
) -> None:
    llm.script.extend([HttpError(status), Reply.text("ok")])
    assert end_of(await collect(client)).text == "ok"


async def test_server_errors_beyond_the_limit(client: ProviderClient, llm: FakeLLMServer) -> None:
    llm.script.extend([HttpError(500)] * 3)
    with pytest.raises(ProviderError) as info:
        await collect(client)
    assert info.value.status == 500
    assert len(llm.requests) == 3


async def test_bad_request_is_final(client: ProviderClient, llm: FakeLLMServer) -> None:
    llm.script.extend([HttpError(400, body="model-x is not a model")])
    with pytest.raises(ProviderError) as info:
        await collect(client)
    assert info.value.status == 400 and not info.value.retryable
    assert "model-x is not a model" in str(info.value)


async def test_drop_before_output_is_retried(client: ProviderClient, llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("lost", drop_after=0), Reply.text("again")])
    assert end_of(await collect(client)).text == "again"


async def test_drop_after_output_is_final(client: ProviderClient, llm: FakeLLMServer) -> None:
    # Late enough that every format has streamed some text (Anthropic opens with 3 events).
    llm.script.extend([Reply.text("one two three four five six", pieces=6, drop_after=5)])
    with pytest.raises(ProviderError, match="broke off after output began"):
        await collect(client)
    assert len(llm.requests) == 1


async def test_malformed_stream(client: ProviderClient, llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("abc", malformed_after=1)])
    with pytest.raises(ProviderError, match="malformed"):
        await collect(client)


async def test_stalled_stream_times_out_and_is_retried(
    client: ProviderClient, llm: FakeLLMServer
) -> None:
    llm.script.extend([Reply.text("x", stall_after=0), Reply.text("recovered")])
    events = await collect(client)
    assert "no data for 0.5 s" in str(next(e for e in events if isinstance(e, Retrying)).error)
    assert end_of(events).text == "recovered"
