"""Gemini ``streamGenerateContent?alt=sse`` streams, and the recorded realistic one.

Builders for the dialect's own tests; ``REALISTIC_STREAM``, ``EXPECTED_END`` and ``decode``
are also what tests/providers/test_stream_splits.py cuts into chunks every which way.
"""

from __future__ import annotations

import json
from typing import Any

from openheim.foundation.models import Reasoning, ToolCall, Usage
from openheim.providers.base import FinishReason, ProviderEvent, StreamEnd
from openheim.providers.gemini_stream import GeminiStreamDecoder
from tests.providers.streams import decode_all


def sse(*payloads: dict[str, Any] | str, eol: str = "\r\n") -> bytes:
    """Frame payloads as Gemini does with ``alt=sse``: one ``data:`` line, CRLF-terminated."""
    out = []
    for payload in payloads:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        out.append(f"data: {text}{eol}{eol}")
    return "".join(out).encode()


def response(
    *parts: dict[str, Any],
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    **candidate: Any,
) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}, "index": 0}
    if finish is not None:
        cand["finishReason"] = finish
    cand.update(candidate)
    payload: dict[str, Any] = {"candidates": [cand], "modelVersion": "gemini-2.5-flash"}
    if usage is not None:
        payload["usageMetadata"] = usage
    return payload


def text(value: str) -> dict[str, Any]:
    return {"text": value}


def call(name: str, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": args}, **extra}


PROMPT_USAGE = {"promptTokenCount": 120, "totalTokenCount": 120}
FINAL_USAGE = {
    "promptTokenCount": 120,
    "candidatesTokenCount": 30,
    "thoughtsTokenCount": 15,
    "cachedContentTokenCount": 100,
    "totalTokenCount": 165,
}

REALISTIC_STREAM = sse(
    response({"text": "The user wants ", "thought": True}, usage=PROMPT_USAGE),
    response({"text": "both files — ünïcode.", "thought": True}, usage=PROMPT_USAGE),
    response(text("Let me "), usage=PROMPT_USAGE),
    response(text("check both files — ünïcode 😀."), usage=PROMPT_USAGE),
    response(
        call("read_file", {"path": "src/main.py"}, thoughtSignature="c2lnLTE="),
        call("list_dir", {"path": "."}),
        usage=PROMPT_USAGE,
    ),
    response(text(""), finish="STOP", usage=FINAL_USAGE),
)

EXPECTED_END = StreamEnd(
    text="Let me check both files — ünïcode 😀.",
    tool_calls=(
        ToolCall("call_t_0", "read_file", '{"path": "src/main.py"}', signature="c2lnLTE="),
        ToolCall("call_t_1", "list_dir", '{"path": "."}'),
    ),
    finish_reason=FinishReason.TOOL_CALLS,
    usage=Usage(input_tokens=120, output_tokens=45, cache_read_tokens=100),
    reasoning=Reasoning(
        text="The user wants both files — ünïcode.",
        format="gemini",
        blocks=json.dumps(
            [{"text": "The user wants both files — ünïcode.", "thought": True}],
            ensure_ascii=False,
        ),
    ),
)


def decode(*chunks: bytes, id_tag: str = "t") -> list[ProviderEvent]:
    return decode_all(GeminiStreamDecoder("gemini", id_tag=id_tag), chunks)
