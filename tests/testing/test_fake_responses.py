"""The fake LLM server's OpenAI Responses dialect: what it streams (decoded by our client
core), over real HTTP, and the requests it refuses as the real API does."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from openheim.foundation.models import Usage
from openheim.providers.base import FinishReason, ProviderEvent, StreamEnd
from openheim.providers.openai_responses_stream import ResponsesStreamDecoder
from openheim.providers.sse import SSEDecoder
from openheim.testing import Reply, open_fake_llm
from openheim.testing.responses_checks import check_body, reasoning_blob
from openheim.testing.responses_wire import response_object, stream_events

THOUGHT = "List first, then read."
REPLY = Reply.tool_calls(
    [("call_a", "list_dir", {"path": "."}), ("call_b", "read_file", {"path": "x"})],
    thinking=THOUGHT,
    text="Looking.",
    usage=Usage(input_tokens=900, output_tokens=40, cache_read_tokens=512),
)
BODY: dict[str, Any] = {
    "model": "gpt-5",
    "input": "hi",
    "stream": True,
    "store": False,
    "include": ["reasoning.encrypted_content"],
}


def decode(events: tuple[bytes, ...]) -> list[ProviderEvent]:
    decoder = ResponsesStreamDecoder(id_tag="t")
    out = [event for data in events for event in decoder.feed(data)]
    return out + decoder.close()


def payloads(events: tuple[bytes, ...]) -> list[dict[str, Any]]:
    sse = SSEDecoder()
    parsed = [e for data in events for e in sse.feed(data)]
    assert all(e.event == json.loads(e.data)["type"] for e in parsed)
    return [json.loads(e.data) for e in parsed]


def test_stream_decodes_back_to_the_script() -> None:
    events = stream_events(REPLY, BODY, sequence=3, created=0)
    end = decode(events)[-1]
    assert isinstance(end, StreamEnd)
    assert end.text == "Looking."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in end.tool_calls] == [
        ("call_a", "list_dir", {"path": "."}),
        ("call_b", "read_file", {"path": "x"}),
    ]
    assert end.finish_reason is FinishReason.TOOL_CALLS
    assert end.usage == REPLY.usage
    assert end.reasoning is not None and end.reasoning.text == THOUGHT
    (item,) = json.loads(end.reasoning.blocks)
    assert item["encrypted_content"] == reasoning_blob(item["id"])
    kinds = [p["type"] for p in payloads(events)]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [p["sequence_number"] for p in payloads(events)] == list(range(len(kinds)))


def test_encrypted_reasoning_only_when_included() -> None:
    body = {**BODY, "include": []}
    final = response_object(REPLY, body, sequence=1, created=0)
    assert final["output"][0]["type"] == "reasoning"
    assert final["output"][0]["encrypted_content"] is None
    end = decode(stream_events(REPLY, body, sequence=1, created=0))[-1]
    assert isinstance(end, StreamEnd) and end.reasoning is not None
    assert end.reasoning.blocks == ""  # nothing that could go back with store: false


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [("length", "incomplete", "max_output_tokens"), ("stop", "completed", None)],
)
def test_finish_reasons(finish: str, status: str, reason: str | None) -> None:
    final = response_object(Reply.text("x", finish_reason=finish), BODY, sequence=1, created=0)
    assert final["status"] == status
    assert final["incomplete_details"] == (reason and {"reason": reason})


def test_omit_done_leaves_out_the_terminal_event() -> None:
    events = stream_events(Reply.text("Hi", omit_done=True), BODY, sequence=1, created=0)
    assert payloads(events)[-1]["type"] == "response.output_item.done"


CALL = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
USER = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
SIGNED = {
    "type": "reasoning",
    "id": "rs_1",
    "summary": [],
    "encrypted_content": reasoning_blob("rs_1"),
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"messages": []}, "Unsupported parameter: 'messages'"),
        ({"input": [USER, CALL]}, "No tool output found for function call c1"),
        ({"input": [USER, OUTPUT]}, "No tool call found for function call output with call_id c1"),
        ({"input": [USER, {**SIGNED, "encrypted_content": None}, CALL, OUTPUT]}, "not persisted"),
        ({"input": [USER, {**SIGNED, "id": "rs_2"}, CALL, OUTPUT]}, "could not be verified"),
        ({"input": [USER, SIGNED]}, "without its required following item"),
        (
            {"input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]},
            "Invalid value: 'input_text'",
        ),
        ({"input": [{**USER, "tool_calls": []}]}, "Unknown parameter: 'input[0].tool_calls'"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "'tools[0].function'"),
        ({"max_output_tokens": 8}, "Expected a value >= 16"),
        ({"reasoning": {"effort": "extreme"}}, "Invalid value: 'extreme'"),
        ({"include": ["reasoning"]}, "Invalid value: 'reasoning'"),
    ],
)
def test_refused_requests(change: dict[str, Any], message: str) -> None:
    problem = check_body({**BODY, **change})
    assert problem is not None and message in problem


def test_a_whole_signed_tool_loop_is_accepted() -> None:
    assert check_body({**BODY, "input": [USER, SIGNED, CALL, OUTPUT]}) is None


async def test_over_http_a_bad_request_is_refused_without_spending_the_script() -> None:
    async with open_fake_llm([Reply.text("ok")]) as llm, httpx.AsyncClient() as client:
        bad = await client.post(f"{llm.base_url}/responses", json={**BODY, "messages": []})
        assert bad.status_code == 400
        assert "messages" in bad.json()["error"]["message"]
        good = await client.post(f"{llm.base_url}/responses", json=BODY)
        assert good.status_code == 200
        assert good.headers["content-type"].startswith("text/event-stream")
        end = decode((good.content,))[-1]
        assert isinstance(end, StreamEnd) and end.text == "ok"
        assert llm.script.remaining == 0
