"""Anthropic Messages streams as the API sends them, and the recorded realistic one.

Builders for the dialect's own tests; ``REALISTIC_STREAM``, ``EXPECTED_END`` and ``decode``
are also what tests/providers/test_stream_splits.py cuts into chunks every which way.
"""

from __future__ import annotations

import json
from typing import Any

from openheim.foundation.models import Reasoning, ToolCall, Usage
from openheim.providers.anthropic import AnthropicStreamDecoder
from openheim.providers.base import FinishReason, ProviderEvent, StreamEnd
from tests.providers.streams import decode_all


def sse(*payloads: dict[str, Any] | str, eol: str = "\n", named: bool = True) -> bytes:
    """Frame payloads the way Anthropic does: ``event: <type>``, ``data: <json>``, blank line."""
    out = []
    for payload in payloads:
        if isinstance(payload, str):
            out.append(f"data: {payload}{eol}{eol}")
            continue
        text = json.dumps(payload, ensure_ascii=False)
        event = f"event: {payload.get('type')}{eol}" if named else ""
        out.append(f"{event}data: {text}{eol}{eol}")
    return "".join(out).encode()


def message_start(**usage: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage or {"input_tokens": 25, "output_tokens": 1},
        },
    }


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def text_start(index: int) -> dict[str, Any]:
    return block_start(index, {"type": "text", "text": ""})


def tool_start(index: int, id: str, name: str) -> dict[str, Any]:
    return block_start(index, {"type": "tool_use", "id": id, "name": name, "input": {}})


def block_delta(index: int, **delta: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def text_delta(index: int, text: str) -> dict[str, Any]:
    return block_delta(index, type="text_delta", text=text)


def json_delta(index: int, partial: str) -> dict[str, Any]:
    return block_delta(index, type="input_json_delta", partial_json=partial)


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str | None, **usage: int) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
    }
    if usage:
        payload["usage"] = usage
    return payload


PING = {"type": "ping"}
MESSAGE_STOP = {"type": "message_stop"}

REALISTIC_STREAM = sse(
    message_start(
        input_tokens=472, output_tokens=2, cache_creation_input_tokens=0, cache_read_input_tokens=0
    ),
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    block_delta(0, type="thinking_delta", thinking="Hmm. "),
    block_delta(0, type="thinking_delta", thinking="Both files — ünïcode."),
    block_delta(0, type="signature_delta", signature="EqQB"),
    block_stop(0),
    block_start(1, {"type": "redacted_thinking", "data": "EmwKAhgB"}),
    block_stop(1),
    text_start(2),
    PING,
    text_delta(2, "Let me "),
    text_delta(2, "check both files — ünïcode 😀."),
    block_stop(2),
    tool_start(3, "toolu_01A", "read_file"),
    json_delta(3, ""),
    json_delta(3, '{"pa'),
    json_delta(3, 'th": "src/'),
    json_delta(3, 'main.py"}'),
    block_stop(3),
    tool_start(4, "toolu_01B", "list_dir"),
    json_delta(4, ""),
    json_delta(4, '{"path"'),
    json_delta(4, ': "."'),
    json_delta(4, "}"),
    block_stop(4),
    message_delta("tool_use", output_tokens=89),
    MESSAGE_STOP,
)

EXPECTED_END = StreamEnd(
    text="Let me check both files — ünïcode 😀.",
    tool_calls=(
        ToolCall("toolu_01A", "read_file", '{"path": "src/main.py"}'),
        ToolCall("toolu_01B", "list_dir", '{"path": "."}'),
    ),
    finish_reason=FinishReason.TOOL_CALLS,
    usage=Usage(input_tokens=472, output_tokens=89),
    reasoning=Reasoning(
        text="Hmm. Both files — ünïcode.",
        format="anthropic",
        blocks=json.dumps(
            [
                {"type": "thinking", "thinking": "Hmm. Both files — ünïcode.", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
            ],
            ensure_ascii=False,
        ),
    ),
)


def decode(*chunks: bytes, id_tag: str = "t") -> list[ProviderEvent]:
    return decode_all(AnthropicStreamDecoder("anthropic", id_tag=id_tag), chunks)
