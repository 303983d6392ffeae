"""The provider client against the fake LLM server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio

from openheim.config.model import ProviderConfig, ProviderKind
from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Message, ToolDefinition, Usage
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

REQUEST = ChatRequest(
    model="m",
    messages=(Message.user("hi"),),
    tools=(ToolDefinition("echo", "Echo.", {"type": "object"}),),
)


def config_for(llm: FakeLLMServer, **overrides: object) -> ProviderConfig:
    settings: dict[str, object] = {
        "name": "fake",
        "kind": ProviderKind.OPENAI,
        "api_base": llm.base_url,
        "default_model": "m",
        "models": ("m",),
        "max_retries": 2,
        "retry_initial_delay_secs": 0.01,
        "timeout_secs": 5.0,
    }
    settings.update(overrides)
    return ProviderConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    async with open_fake_llm() as server:
        yield server


async def collect(client: ProviderClient, request: ChatRequest = REQUEST) -> list[ProviderEvent]:
    async with client.stream(request) as stream:
        return [event async for event in stream]


async def test_text_and_tool_call_stream(llm: FakeLLMServer) -> None:
    llm.script.append(Reply.tool_call("echo", {"text": "x" * 50}, text="Let me", fragments=7))
    async with open_provider(config_for(llm), "key-1") as client:
        events = await collect(client)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me"
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.finish_reason is FinishReason.TOOL_CALLS
    assert end.tool_calls[0].parsed_arguments() == {"text": "x" * 50}
    assert end.usage is not None and end.usage.input_tokens > 0
    assert llm.requests[0].headers["authorization"] == "Bearer key-1"


async def test_retries_announce_themselves_then_succeed(llm: FakeLLMServer) -> None:
    llm.script.extend([HttpError(503), HttpError(502), Reply.text("ok")])
    async with open_provider(config_for(llm), None) as client:
        events = await collect(client)
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [(r.attempt, r.max_attempts, r.error.status) for r in retries] == [
        (1, 3, 503),
        (2, 3, 502),
    ]
    assert "retrying in" in retries[0].describe() and "attempt 2/3" in retries[0].describe()
    assert isinstance(events[-1], StreamEnd) and events[-1].text == "ok"


async def test_retry_after_is_honoured(llm: FakeLLMServer) -> None:
    llm.script.extend([HttpError(429, retry_after=0.5), Reply.text("ok")])
    async with open_provider(config_for(llm), None) as client:
        events = await collect(client)
    assert [e.delay for e in events if isinstance(e, Retrying)] == [0.5]
    assert llm.requests[1].received_at - llm.requests[0].received_at >= 0.45


async def test_a_retry_after_beyond_the_cap_fails_at_once_and_pauses_no_one_long(
    llm: FakeLLMServer,
) -> None:
    llm.script.extend([HttpError(429, retry_after=999999), Reply.text("next one is fine")])
    config = config_for(llm, retry_max_delay_secs=0.2)
    async with open_provider(config, None) as client:
        with trio.fail_after(5):
            with pytest.raises(ProviderError) as info:
                await collect(client)
            started = trio.current_time()
            events = await collect(client)  # another session on the same key
    assert info.value.status == 429 and not info.value.retryable
    assert str(info.value) == (
        "fake provider error: HTTP 429: asked to wait 999999 s before retrying (Retry-After), "
        "more than retry_max_delay_secs = 0.2; fix: try again later, or raise "
        "[providers.fake] retry_max_delay_secs"
    )
    assert len(llm.requests) == 2  # not retried
    assert isinstance(events[-1], StreamEnd) and events[-1].text == "next one is fine"
    assert trio.current_time() - started < 1.0  # paused at most the cap (0.2 s)


async def test_client_errors_are_final(llm: FakeLLMServer) -> None:
    llm.script.extend([HttpError(400, body={"error": {"message": "bad model name"}})])
    async with open_provider(config_for(llm), None) as client:
        with pytest.raises(ProviderError) as info:
            await collect(client)
    assert info.value.status == 400 and not info.value.retryable
    assert "bad model name" in str(info.value)
    assert len(llm.requests) == 1


async def test_gives_up_after_max_retries(llm: FakeLLMServer) -> None:
    llm.script.extend([HttpError(500)] * 3)
    async with open_provider(config_for(llm), None) as client:
        with pytest.raises(ProviderError, match="HTTP 500"):
            await collect(client)
    assert len(llm.requests) == 3


async def test_drop_before_output_is_retried(llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("never seen", drop_after=0), Reply.text("second try")])
    async with open_provider(config_for(llm), None) as client:
        events = await collect(client)
    assert isinstance(events[-1], StreamEnd) and events[-1].text == "second try"
    assert len(llm.requests) == 2


async def test_drop_after_output_is_not_retried(llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("one two three four", pieces=4, drop_after=2)])
    async with open_provider(config_for(llm), None) as client:
        with pytest.raises(ProviderError, match="broke off after output began") as info:
            await collect(client)
    assert not info.value.retryable
    assert len(llm.requests) == 1


async def test_drop_inside_tool_calls_is_retried(llm: FakeLLMServer) -> None:
    """Calls reach the consumer only whole, with the end: a stream cut among their
    fragments showed nothing yet, so it is retried like a drop before output."""
    cut = Reply.tool_call("echo", {"text": "first"}, fragments=4, drop_after=3)
    llm.script.extend([cut, Reply.tool_call("echo", {"text": "second"})])
    async with open_provider(config_for(llm), None) as client:
        events = await collect(client)
    assert [type(e) for e in events] == [Retrying, StreamEnd]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.tool_calls[0].parsed_arguments() == {"text": "second"}
    assert len(llm.requests) == 2


async def test_malformed_sse_is_a_clear_final_error(llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("abc", malformed_after=1)])
    async with open_provider(config_for(llm), None) as client:
        with pytest.raises(ProviderError, match="malformed JSON in stream"):
            await collect(client)
    assert len(llm.requests) == 1


async def test_stalled_stream_hits_the_idle_timeout(llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("x", stall_after=0), Reply.text("recovered")])
    async with open_provider(config_for(llm, timeout_secs=0.3), None) as client:
        with trio.fail_after(5):
            events = await collect(client)
    retry = next(e for e in events if isinstance(e, Retrying))
    assert "no data for 0.3 s" in str(retry.error)
    assert isinstance(events[-1], StreamEnd) and events[-1].text == "recovered"


async def test_connection_refused_is_retryable_then_final() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ProviderConfig(
        name="dead",
        kind=ProviderKind.OPENAI_COMPATIBLE,
        api_base=f"http://127.0.0.1:{port}/v1",
        default_model="m",
        models=("m",),
        max_retries=1,
        retry_initial_delay_secs=0.01,
    )
    async with open_provider(config, None) as client:
        with pytest.raises(ProviderError, match="network error") as info:
            await collect(client)
    assert info.value.retryable


async def test_leaving_early_closes_the_stream(llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("a b c d e f", pieces=6, chunk_delay=0.2), Reply.text("next")])
    async with open_provider(config_for(llm), None) as client:
        with trio.fail_after(2):
            async with client.stream(REQUEST) as stream:
                first = await stream.__anext__()
        assert isinstance(first, TextDelta)
        # The pooled client still works for the next request.
        events = await collect(client)
    assert isinstance(events[-1], StreamEnd) and events[-1].text == "next"


async def test_cancelling_the_caller_stops_the_stream(llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("x", stall_after=1)])
    async with open_provider(config_for(llm), None) as client:
        with trio.move_on_after(0.3) as scope:
            await collect(client)
    assert scope.cancelled_caught


async def test_usage_is_normalised(llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("hi", usage=Usage(100, 7, cache_read_tokens=40))])
    async with open_provider(config_for(llm), None) as client:
        events = await collect(client)
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.usage == Usage(100, 7, cache_read_tokens=40)


async def test_an_endless_sse_line_fails_the_request_instead_of_filling_memory() -> None:
    """A server that streams one `data:` line and never ends it (seen: 400 MB)."""

    async def endless(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(65536)
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        piece = b"x" * 65536
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(b"6\r\ndata: \r\n")
            for _ in range(400):  # 25 MiB unless the client stops reading
                await stream.send_all(b"%x\r\n%s\r\n" % (len(piece), piece))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, endless, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        config = ProviderConfig(
            name="endless",
            kind=ProviderKind.OPENAI,
            api_base=f"http://127.0.0.1:{port}/v1",
            default_model="m",
            models=("m",),
            max_retries=0,
        )
        async with open_provider(config, None) as client:
            with trio.fail_after(10), pytest.raises(ProviderError) as info:
                await collect(client)
        nursery.cancel_scope.cancel()
    assert not info.value.retryable
    assert str(info.value) == (
        "endless provider error: the stream sent an event over 8388608 characters; "
        "not buffered further"
    )


async def test_a_reply_past_max_reply_bytes_is_cut_with_a_clear_error(llm: FakeLLMServer) -> None:
    llm.script.extend([Reply.text("x" * 20_000, pieces=40), Reply.text("small")])
    async with open_provider(config_for(llm, max_reply_bytes=4096), None) as client:
        with pytest.raises(ProviderError) as info:
            await collect(client)
        events = await collect(client)  # the next request is fine
    assert not info.value.retryable and len(llm.requests) == 2
    assert str(info.value).startswith(
        "fake provider error: the reply was cut: more than max_reply_bytes = 4096; fix: raise "
        "it in [providers.fake]"
    )
    assert isinstance(events[-1], StreamEnd) and events[-1].text == "small"


async def test_a_reply_that_streams_too_long_is_cut(llm: FakeLLMServer) -> None:
    llm.script.append(Reply.text("slow " * 50, pieces=50, chunk_delay=0.05))
    async with open_provider(config_for(llm, max_reply_secs=0.3), None) as client:
        with trio.fail_after(5), pytest.raises(ProviderError) as info:
            await collect(client)
    assert "the reply was cut: still streaming after max_reply_secs = 0.3 s" in str(info.value)
    assert not info.value.retryable and len(llm.requests) == 1


async def test_a_gzipped_error_body_is_read_decoded() -> None:
    """Providers and proxies compress error bodies; the message must not arrive garbled."""
    body = gzip.compress(json.dumps({"error": {"message": "model 'x' does not exist"}}).encode())

    async def gzipped(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(65536)
        head = (
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
            b"content-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(body)
        )
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(head + body)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, gzipped, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        config = ProviderConfig(
            name="zipped",
            kind=ProviderKind.OPENAI,
            api_base=f"http://127.0.0.1:{port}/v1",
            default_model="m",
            models=("m",),
            max_retries=0,
        )
        async with open_provider(config, None) as client:
            with trio.fail_after(10), pytest.raises(ProviderError) as info:
                await collect(client)
        nursery.cancel_scope.cancel()
    assert "model 'x' does not exist" in str(info.value)
