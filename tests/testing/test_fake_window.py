"""The fake LLM's context window: real refusals per format, and prompt tokens in usage; and
the client's classification of those refusals as ``ContextTooLong``."""

from __future__ import annotations

import json

import pytest
import trio

from openheim.config.model import ProviderConfig, ProviderKind
from openheim.foundation.errors import ContextTooLong, ProviderError
from openheim.foundation.models import Message
from openheim.providers.base import ChatRequest, StreamEnd
from openheim.providers.client import open_provider
from openheim.providers.context_errors import is_context_overflow
from openheim.testing import HttpError, Reply, open_fake_llm
from openheim.testing.window import request_tokens

KINDS = {
    ProviderKind.OPENAI: ("/v1", "context_length_exceeded"),
    ProviderKind.ANTHROPIC: ("/v1", "prompt is too long"),
    ProviderKind.GEMINI: ("/v1beta", "input token count"),
}


def provider(kind: ProviderKind, url: str) -> ProviderConfig:
    prefix = KINDS[kind][0]
    return ProviderConfig(
        name=kind.value,
        kind=kind,
        api_base=url + prefix,
        default_model="m",
        models=("m",),
        max_retries=0,
        max_tokens=100,
    )


def request(text: str) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message.user(text),), max_tokens=100)


@pytest.mark.parametrize("kind", list(KINDS))
async def test_over_the_window_is_refused_as_the_real_api_does(kind: ProviderKind) -> None:
    async with open_fake_llm([Reply.text("fits")], context_window=1000) as llm:
        config = provider(kind, llm.url)
        async with open_provider(config, "key") as client:
            with trio.fail_after(10), pytest.raises(ContextTooLong) as caught:
                async with client.stream(request("x" * 10_000)) as stream:
                    [event async for event in stream]
            assert caught.value.status == 400 and not caught.value.retryable
            assert KINDS[kind][1] in json.dumps(caught.value.message).lower() or (
                kind is ProviderKind.OPENAI and "maximum context length" in caught.value.message
            )
            with trio.fail_after(10):
                async with client.stream(request("short")) as stream:
                    ends = [e async for e in stream if isinstance(e, StreamEnd)]
    assert llm.script.consumed == 1  # the refusal spent no scripted answer
    assert ends[0].usage is not None
    assert ends[0].usage.input_tokens == request_tokens(llm.requests[-1].body)


@pytest.mark.parametrize(
    ("status", "body", "overflow"),
    [
        (400, b'{"error": {"code": "context_length_exceeded", "message": "too long"}}', True),
        (400, b'{"error": {"message": "prompt is too long: 9 tokens > 8 maximum"}}', True),
        (400, b'{"error": {"message": "The input token count (9) exceeds the max"}}', True),
        (400, b'{"error": {"message": "invalid tool schema"}}', False),
        (500, b'{"error": {"code": "context_length_exceeded"}}', False),
    ],
)
def test_which_refusals_mean_too_long(status: int, body: bytes, overflow: bool) -> None:
    assert is_context_overflow(status, body) is overflow


async def test_another_400_stays_a_plain_provider_error() -> None:
    async with open_fake_llm([HttpError(400)], context_window=1000) as llm:
        config = provider(ProviderKind.OPENAI, llm.url)
        async with open_provider(config, "key") as client:
            with trio.fail_after(10), pytest.raises(ProviderError) as caught:
                async with client.stream(request("hi")) as stream:
                    [event async for event in stream]
    assert not isinstance(caught.value, ContextTooLong)
