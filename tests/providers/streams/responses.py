"""OpenAI Responses API streams as the API sends them, and the recorded realistic one.

Builders for the dialect's own tests; ``REALISTIC_STREAM``, ``EXPECTED_END`` and ``decode``
are also what tests/providers/test_stream_splits.py cuts into chunks every which way.
"""

from __future__ import annotations

import json
from typing import Any

from openheim.foundation.models import Reasoning, ToolCall, Usage
from openheim.providers.base import FinishReason, ProviderEvent, StreamEnd
from openheim.providers.openai_responses_stream import ResponsesStreamDecoder
from tests.providers.streams import decode_all


def sse(*payloads: dict[str, Any] | str, eol: str = "\n") -> bytes:
    """Frame payloads as OpenAI does: ``event: <type>``, ``data: <json>``, a blank line."""
    out = []
    for number, payload in enumerate(payloads):
        if isinstance(payload, str):
            out.append(f"data: {payload}{eol}{eol}")
            continue
        text = json.dumps({**payload, "sequence_number": number}, ensure_ascii=False)
        out.append(f"event: {payload.get('type')}{eol}data: {text}{eol}{eol}")
    return "".join(out).encode()


def response(status: str, usage: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_68af3c2e",
        "object": "response",
        "status": status,
        "model": "gpt-5-codex",
        "output": [],
        "usage": usage,
        **extra,
    }


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": f"response.{kind}", **fields}


def added(index: int, item: dict[str, Any]) -> dict[str, Any]:
    return event("output_item.added", output_index=index, item=item)


def done(index: int, item: dict[str, Any]) -> dict[str, Any]:
    return event("output_item.done", output_index=index, item=item)


def text_delta(index: int, delta: str) -> dict[str, Any]:
    return event(
        "output_text.delta",
        item_id=f"msg_{index}",
        output_index=index,
        content_index=0,
        delta=delta,
    )


def summary_delta(index: int, delta: str, summary_index: int = 0) -> dict[str, Any]:
    return event(
        "reasoning_summary_text.delta",
        item_id=f"rs_{index}",
        output_index=index,
        summary_index=summary_index,
        delta=delta,
    )


def arguments_delta(index: int, delta: str) -> dict[str, Any]:
    return event(
        "function_call_arguments.delta", item_id=f"fc_{index}", output_index=index, delta=delta
    )


def call_item(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": f"fc_{index}",
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def message_item(index: int, text: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {"id": f"msg_{index}", "type": "message", "role": "assistant", "content": [part]}


def completed(usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return event("completed", response=response("completed", usage))


USAGE = {
    "input_tokens": 1320,
    "input_tokens_details": {"cached_tokens": 1024},
    "output_tokens": 311,
    "output_tokens_details": {"reasoning_tokens": 192},
    "total_tokens": 1631,
}
REASONING_ITEM = {
    "id": "rs_0",
    "type": "reasoning",
    "summary": [
        {"type": "summary_text", "text": "**Reading** both files — ünïcode."},
        {"type": "summary_text", "text": "Then list."},
    ],
    "encrypted_content": "gAAAAABo-ZXNjcnlwdGVk",
}
ARGS_A = '{"path": "src/main.py"}'
ARGS_B = '{"path": "."}'

REALISTIC_STREAM = sse(
    event("created", response=response("in_progress")),
    event("in_progress", response=response("in_progress")),
    added(0, {"id": "rs_0", "type": "reasoning", "summary": []}),
    event("reasoning_summary_part.added", item_id="rs_0", output_index=0, summary_index=0),
    summary_delta(0, "**Reading** both "),
    summary_delta(0, "files — ünïcode."),
    event("reasoning_summary_part.done", item_id="rs_0", output_index=0, summary_index=0),
    summary_delta(0, "Then list.", summary_index=1),
    done(0, REASONING_ITEM),
    added(1, {"id": "msg_1", "type": "message", "role": "assistant", "content": []}),
    event("content_part.added", item_id="msg_1", output_index=1, content_index=0),
    text_delta(1, "Let me "),
    text_delta(1, "check both files — ünïcode 😀."),
    event("output_text.done", item_id="msg_1", output_index=1, text="ignored: already streamed"),
    done(1, message_item(1, "Let me check both files — ünïcode 😀.")),
    added(2, {**call_item(2, "call_A", "read_file", ""), "status": "in_progress"}),
    arguments_delta(2, '{"pa'),
    arguments_delta(2, 'th": "src/'),
    arguments_delta(2, 'main.py"}'),
    event("function_call_arguments.done", item_id="fc_2", output_index=2, arguments=ARGS_A),
    done(2, call_item(2, "call_A", "read_file", ARGS_A)),
    added(3, {**call_item(3, "call_B", "list_dir", ""), "status": "in_progress"}),
    arguments_delta(3, '{"path"'),
    arguments_delta(3, ': "."}'),
    done(3, call_item(3, "call_B", "list_dir", ARGS_B)),
    completed(USAGE),
)

EXPECTED_END = StreamEnd(
    text="Let me check both files — ünïcode 😀.",
    tool_calls=(
        ToolCall("call_A", "read_file", ARGS_A),
        ToolCall("call_B", "list_dir", ARGS_B),
    ),
    finish_reason=FinishReason.TOOL_CALLS,
    usage=Usage(input_tokens=1320, output_tokens=311, cache_read_tokens=1024),
    reasoning=Reasoning(
        text="**Reading** both files — ünïcode.\n\nThen list.",
        format="openai-responses",
        blocks=json.dumps([REASONING_ITEM], ensure_ascii=False),
    ),
)


def decode(*chunks: bytes, id_tag: str = "t") -> list[ProviderEvent]:
    return decode_all(ResponsesStreamDecoder("openai", id_tag=id_tag), chunks)
