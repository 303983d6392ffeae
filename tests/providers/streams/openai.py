"""OpenAI Chat Completions streams as servers send them, and the recorded realistic one.

Builders for the dialect's own tests; ``REALISTIC_STREAM``, ``EXPECTED_END`` and ``decode``
are also what tests/providers/test_stream_splits.py cuts into chunks every which way.
"""

from __future__ import annotations

import json
from typing import Any

from openheim.foundation.models import Reasoning, ToolCall, Usage
from openheim.providers.base import FinishReason, ProviderEvent, StreamEnd
from openheim.providers.openai import OpenAIStreamDecoder
from tests.providers.streams import decode_all


def sse(*payloads: dict[str, Any] | str, eol: str = "\n") -> bytes:
    """Frame payloads the way OpenAI does: one ``data:`` line and a blank line each."""
    out = []
    for payload in payloads:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        out.append(f"data: {text}{eol}{eol}")
    return "".join(out).encode()


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}],
        "usage": None,
    }


def call_fragment(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
) -> dict[str, Any]:
    item: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id is not None:
        item["id"] = id
        item["type"] = "function"
    if name is not None:
        item["function"]["name"] = name
    return item


def tool_chunk(*items: dict[str, Any]) -> dict[str, Any]:
    return chunk({"tool_calls": list(items)})


USAGE_CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "model": "gpt-test",
    "choices": [],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 45,
        "total_tokens": 165,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}

REALISTIC_STREAM = b": OPENROUTER PROCESSING\n\n" + sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": None, "reasoning_content": "The user wants "}),
    chunk({"content": None, "reasoning_content": "both files — ünïcode."}),
    chunk({"content": "Let me "}),
    chunk({"content": "check both files — ünïcode 😀."}),
    tool_chunk(call_fragment(0, id="call_a", name="read_file")),
    tool_chunk(call_fragment(0, arguments='{"pa')),
    tool_chunk(call_fragment(1, id="call_b", name="list_dir")),
    tool_chunk(call_fragment(0, arguments='th": "src/')),
    tool_chunk(call_fragment(1, arguments='{"path"')),
    tool_chunk(call_fragment(0, arguments='main.py"}')),
    tool_chunk(call_fragment(1, arguments=': "."}')),
    chunk({}, finish_reason="tool_calls"),
    USAGE_CHUNK,
    "[DONE]",
)

EXPECTED_END = StreamEnd(
    text="Let me check both files — ünïcode 😀.",
    tool_calls=(
        ToolCall("call_a", "read_file", '{"path": "src/main.py"}'),
        ToolCall("call_b", "list_dir", '{"path": "."}'),
    ),
    finish_reason=FinishReason.TOOL_CALLS,
    usage=Usage(input_tokens=120, output_tokens=45, cache_read_tokens=100),
    reasoning=Reasoning(text="The user wants both files — ünïcode.", format="openai-chat"),
)


def decode(*chunks: bytes, id_tag: str = "t") -> list[ProviderEvent]:
    return decode_all(OpenAIStreamDecoder("openai", id_tag=id_tag), chunks)
