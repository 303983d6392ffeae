"""The fake LLM server, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from openheim.foundation.models import Usage
from openheim.testing import (
    HttpError,
    Reply,
    Script,
    TextChunk,
    ToolCallChunk,
    dump_script,
    load_script,
    open_fake_llm,
    structure_responses,
    unstructure_responses,
)
from openheim.testing.openai_wire import stream_events

MODEL = "fake-model"


def chat_body(*, stream: bool = True, include_usage: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


async def stream_data(
    client: httpx.AsyncClient, body: dict[str, Any], received: list[str] | None = None
) -> list[str]:
    """The ``data:`` payloads of one streamed response (appended to ``received`` as they come)."""
    received = [] if received is None else received
    async with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                received.append(line.removeprefix("data: "))
            else:
                assert line == ""
    return received


def chunks_of(data: list[str]) -> list[dict[str, Any]]:
    return [json.loads(item) for item in data if item != "[DONE]"]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def assemble_tool_calls(chunks: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for item in choice["delta"].get("tool_calls", []):
                call = calls.setdefault(item["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] += item.get("id", "")
                call["name"] += item.get("function", {}).get("name", "")
                call["arguments"] += item["function"]["arguments"]
    return calls


async def test_text_reply_has_the_openai_stream_shape() -> None:
    async with (
        open_fake_llm([Reply.text("Hello there", pieces=3)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        data = await stream_data(client, chat_body())

    assert data[-1] == "[DONE]"
    chunks = chunks_of(data)
    assert [c["object"] for c in chunks] == ["chat.completion.chunk"] * 4
    assert {c["id"] for c in chunks} == {"chatcmpl-fake-1"}
    assert all(c["model"] == MODEL and isinstance(c["created"], int) for c in chunks)
    assert all("usage" not in c for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["role"] == "assistant"
    assert all("role" not in delta for delta in deltas[1:])
    assert "".join(delta.get("content", "") for delta in deltas) == "Hello there"
    assert len(deltas) == 4 and deltas[-1] == {}
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]


async def test_tool_call_fragments_reassemble_exactly() -> None:
    arguments = {"path": "src/main.py", "lines": [1, 2, 3], "note": "ünïcode"}
    async with (
        open_fake_llm([Reply.tool_call("read_file", arguments, id="call_7", fragments=5)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        chunks = chunks_of(await stream_data(client, chat_body()))

    calls = assemble_tool_calls(chunks)
    assert calls == {0: {"id": "call_7", "name": "read_file", "arguments": json.dumps(arguments)}}
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[:-1]]
    assert len(fragments) == 6
    assert fragments[0]["type"] == "function" and fragments[0]["function"]["arguments"] == ""
    for fragment in fragments[1:]:
        assert set(fragment) == {"index", "function"}
        assert set(fragment["function"]) == {"arguments"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_parallel_tool_calls_interleave_and_follow_text() -> None:
    reply = Reply.tool_calls(
        [("call_a", "ls", {"path": "."}), ("call_b", "cat", '{"path": "x"}')],
        fragments=3,
        text="Let me look.",
    )
    indices = [c.index for c in reply.chunks if isinstance(c, ToolCallChunk)]
    assert indices[:4] == [0, 1, 0, 1]
    async with (
        open_fake_llm([reply]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        chunks = chunks_of(await stream_data(client, chat_body()))

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Let me look."}
    assert assemble_tool_calls(chunks) == {
        0: {"id": "call_a", "name": "ls", "arguments": '{"path": "."}'},
        1: {"id": "call_b", "name": "cat", "arguments": '{"path": "x"}'},
    }


async def test_usage_chunk_only_when_requested() -> None:
    usage = Usage(input_tokens=120, output_tokens=7, cache_read_tokens=100)
    script = [
        Reply.text("a", usage=usage),
        Reply.text("b", usage=usage),
        Reply.text("c", usage=None),
    ]
    async with (
        open_fake_llm(script) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        with_usage = chunks_of(await stream_data(client, chat_body(include_usage=True)))
        without = chunks_of(await stream_data(client, chat_body()))
        usage_off = chunks_of(await stream_data(client, chat_body(include_usage=True)))

    last = with_usage[-1]
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 7,
        "total_tokens": 127,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert all(c["usage"] is None for c in with_usage[:-1])
    assert all("usage" not in c and c["choices"] for c in without)
    assert all(c["choices"] for c in usage_off)


async def test_http_error_with_retry_after() -> None:
    script = [
        HttpError(429, retry_after=2),
        HttpError(503, body="upstream unavailable", headers={"x-fake": "yes"}),
        HttpError(400, body={"error": {"message": "bad tools"}}),
    ]
    async with (
        open_fake_llm(script) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        limited = await client.post("/chat/completions", json=chat_body())
        unavailable = await client.post("/chat/completions", json=chat_body())
        bad = await client.post("/chat/completions", json=chat_body())

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.headers["retry-after-ms"] == "2000"
    error = limited.json()["error"]
    assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
    assert error["message"]
    assert unavailable.status_code == 503
    assert unavailable.text == "upstream unavailable"
    assert unavailable.headers["x-fake"] == "yes"
    assert bad.status_code == 400 and bad.json() == {"error": {"message": "bad tools"}}


async def test_drop_after_makes_httpx_raise() -> None:
    script = [Reply.text("Hello there", pieces=3, drop_after=2), Reply.text("next")]
    received: list[str] = []
    async with (
        open_fake_llm(script) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            await stream_data(client, chat_body(), received)
        # The connection died but the server did not: the next request is served.
        assert chunks_of(await stream_data(client, chat_body()))

    assert [json.loads(item)["choices"][0]["delta"]["content"] for item in received] == [
        "Hell",
        "o t",
    ]


@pytest.mark.parametrize("drop_after", [0, 99])
async def test_drop_at_either_end_still_truncates_the_body(drop_after: int) -> None:
    async with (
        open_fake_llm([Reply.text("Hi", drop_after=drop_after)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        received: list[str] = []
        with pytest.raises(httpx.RemoteProtocolError):
            await stream_data(client, chat_body(), received)
    # "H", "i", the finish chunk and [DONE]: everything or nothing, but never a clean end.
    assert len(received) == (0 if drop_after == 0 else 4)


async def test_malformed_after_inserts_invalid_json() -> None:
    async with (
        open_fake_llm([Reply.text("Hello there", malformed_after=1)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        data = await stream_data(client, chat_body())

    assert data[1] == "{not json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[1])
    assert data[-1] == "[DONE]" and len(data) == 6


async def test_omit_done() -> None:
    async with (
        open_fake_llm([Reply.text("Hi", omit_done=True)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        data = await stream_data(client, chat_body())
    assert "[DONE]" not in data
    assert json.loads(data[-1])["choices"][0]["finish_reason"] == "stop"


async def test_stall_after_times_out_the_client() -> None:
    timeout = httpx.Timeout(5.0, read=0.5)
    received: list[str] = []
    async with (
        open_fake_llm([Reply.text("Hello there", stall_after=1), Reply.text("ok")]) as llm,
        httpx.AsyncClient(base_url=llm.base_url, timeout=timeout) as client,
    ):
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await stream_data(client, chat_body(), received)
        assert 0.4 < time.monotonic() - started < 1.5
        assert chunks_of(await stream_data(client, chat_body()))
    assert len(received) == 1


async def test_shutdown_aborts_a_stalled_stream_promptly() -> None:
    first_event = trio.Event()
    errors: list[Exception] = []

    async def consume(client: httpx.AsyncClient) -> None:
        try:
            async with client.stream("POST", "/chat/completions", json=chat_body()) as response:
                async for _ in response.aiter_lines():
                    first_event.set()
        except httpx.HTTPError as exc:
            errors.append(exc)

    async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
        started = time.monotonic()
        async with open_fake_llm([Reply.text("Hello", stall_after=1)]) as llm:
            client.base_url = httpx.URL(llm.base_url)
            nursery.start_soon(consume, client)
            await first_event.wait()
        assert time.monotonic() - started < 1.0
    assert len(errors) == 1 and isinstance(errors[0], httpx.RemoteProtocolError)


async def test_chunk_delay_paces_the_stream() -> None:
    arrivals: list[float] = []
    async with (
        open_fake_llm([Reply.text("abc", pieces=3, chunk_delay=0.05)]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        started = time.monotonic()
        async with client.stream("POST", "/chat/completions", json=chat_body()) as response:
            async for line in response.aiter_lines():
                if line:
                    arrivals.append(time.monotonic() - started)
    # 3 chunks + finish + [DONE], each after its own delay, each flushed separately.
    assert len(arrivals) == 5
    assert arrivals[-1] >= 0.25
    assert arrivals[-1] - arrivals[0] >= 0.15


async def test_requests_are_recorded() -> None:
    async with (
        open_fake_llm([Reply.text("one")]) as llm,
        httpx.AsyncClient(base_url=llm.url) as client,
    ):
        before = time.monotonic()
        await stream_data(client, chat_body(include_usage=True))  # without the /v1 prefix
        bad = await client.post("/v1/chat/completions", content=b"{oops", headers={"X-Key": "k"})
        missing = await client.post("/v1/elsewhere", json={})
        wrong_method = await client.get("/v1/chat/completions")
        no_model = await client.post("/v1/chat/completions", json={"messages": []})

    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert missing.status_code == 404
    assert wrong_method.status_code == 405
    assert no_model.status_code == 400 and "model" in no_model.json()["error"]["message"]
    first, second, third, fourth, fifth = llm.requests
    assert (first.method, first.path) == ("POST", "/chat/completions")
    assert first.body == chat_body(include_usage=True)
    assert first.headers["content-type"] == "application/json"
    assert before <= first.received_at <= second.received_at
    assert (second.path, second.body) == ("/v1/chat/completions", None)
    assert second.headers["x-key"] == "k"
    assert (third.path, third.body) == ("/v1/elsewhere", {})
    assert (fourth.method, fifth.body) == ("GET", {"messages": []})
    assert llm.script.consumed == 1  # bad requests do not spend scripted responses


async def test_wait_for_requests_wakes_when_the_count_is_reached() -> None:
    async with (
        open_fake_llm([Reply.text("one"), Reply.text("two")]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        reached: list[int] = []

        async def wait(count: int) -> None:
            await llm.wait_for_requests(count)
            reached.append(len(llm.requests))

        with trio.fail_after(10):
            await llm.wait_for_requests(0)  # already true: returns at once
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait, 2)
                await stream_data(client, chat_body())
                await trio.testing.wait_all_tasks_blocked()
                assert reached == []  # one request is not two
                await stream_data(client, chat_body())
        assert reached == [2]


async def test_exhausted_script_then_append() -> None:
    script = Script()
    async with (
        open_fake_llm(script) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        exhausted = await client.post("/chat/completions", json=chat_body())
        llm.script.append(Reply.text("late"))
        late = chunks_of(await stream_data(client, chat_body()))

    assert exhausted.status_code == 500
    assert exhausted.json()["error"]["message"] == "fake LLM script exhausted"
    assert text_of(late) == "late"


async def test_errors_leave_the_block_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with open_fake_llm([]):
            raise KeyError("from the body")


async def test_repeat_script_cycles() -> None:
    script = Script([Reply.text("a"), Reply.text("b")], repeat=True)
    async with (
        open_fake_llm(script) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        texts = []
        for _ in range(5):
            chunks = chunks_of(await stream_data(client, chat_body()))
            texts.append(chunks[0]["choices"][0]["delta"]["content"])
    assert texts == ["a", "b", "a", "b", "a"]


async def test_non_streaming_request_gets_a_completion() -> None:
    reply = Reply.tool_call("echo", {"x": 1}, text="Sure.")
    async with (
        open_fake_llm([reply]) as llm,
        httpx.AsyncClient(base_url=llm.base_url) as client,
    ):
        response = await client.post("/chat/completions", json=chat_body(stream=False))
    body = response.json()
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Sure."
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "echo", "arguments": '{"x": 1}'}}
    ]
    assert body["usage"]["total_tokens"] == 15


def test_renderer_is_sans_io() -> None:
    reply = Reply((), finish_reason="length", usage=None, omit_done=True)
    events = stream_events(reply, completion_id="c", model="m", created=1, include_usage=True)
    payloads = [json.loads(event.removeprefix(b"data: ")) for event in events]
    assert all(event.endswith(b"\n\n") for event in events)
    deltas = [p["choices"][0]["delta"] for p in payloads]
    assert deltas == [{"role": "assistant", "content": ""}, {}]
    assert payloads[-1]["choices"][0]["finish_reason"] == "length"


def test_reply_constructors() -> None:
    assert Reply.text("Hello there", pieces=3).chunks == (
        TextChunk("Hell"),
        TextChunk("o t"),
        TextChunk("here"),
    )
    assert Reply.text("ab", pieces=5).chunks == (TextChunk("a"), TextChunk("b"))
    assert Reply.text("").effective_finish_reason == "stop"
    call = Reply.tool_call("f", "{}", fragments=4)
    assert call.chunks == (
        ToolCallChunk(0, "call_1", "f", ""),
        ToolCallChunk(0, None, None, "{"),
        ToolCallChunk(0, None, None, "}"),
    )
    assert call.effective_finish_reason == "tool_calls"
    with pytest.raises(ValueError):
        Reply.text("x", drop_after=-1)


def test_json_script_round_trips_through_cattrs(tmp_path: Path) -> None:
    responses = [
        Reply.tool_call("echo", {"a": 1}, text="hi", drop_after=2, chunk_delay=0.01),
        HttpError(429, retry_after=0.5),
        HttpError(502, body="bad gateway", headers={"x": "y"}),
        Reply.text("Hello", usage=Usage(1, 2, 3, 4)),
    ]
    path = tmp_path / "script.json"
    dump_script(path, responses)
    script = load_script(path, repeat=True)
    assert script.repeat
    assert [script.next_response() for _ in responses] == responses

    handwritten = [
        {"type": "reply", "chunks": [{"text": "Hel"}, {"text": "lo"}], "stall_after": 1},
        {"type": "http_error", "status": 500},
    ]
    assert structure_responses(handwritten) == [
        Reply((TextChunk("Hel"), TextChunk("lo")), stall_after=1),
        HttpError(500),
    ]
    assert structure_responses(unstructure_responses(responses)) == responses
    with pytest.raises(ValueError, match="dorp_after"):
        structure_responses([{"type": "reply", "chunks": [], "dorp_after": 1}])
    with pytest.raises(ValueError, match="list"):
        structure_responses({"type": "reply"})


async def test_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    dump_script(path, [Reply.text("from the cli")])
    command = [sys.executable, "-m", "openheim.testing", "--script", str(path)]
    run = partial(
        trio.run_process, command, stdout=subprocess.PIPE, capture_stderr=True, check=False
    )
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(run)
        assert process.stdout is not None
        output = b""
        with trio.fail_after(10):
            while b"\n" not in output:
                data = await process.stdout.receive_some()
                assert data, "the CLI exited before announcing its address"
                output += data
        line = output.decode().splitlines()[0]
        assert line.startswith("listening http://127.0.0.1:") and line.endswith("/v1")
        async with httpx.AsyncClient(base_url=line.removeprefix("listening ")) as client:
            chunks = chunks_of(await stream_data(client, chat_body()))
        assert text_of(chunks) == "from the cli"
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(5):
            await process.wait()
        await process.stdout.aclose()
    assert process.returncode == 0


def test_cli_rejects_a_bad_script(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"type": "reply"}]')
    result = subprocess.run(
        [sys.executable, "-m", "openheim.testing", "--script", str(path)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "invalid fake LLM script" in result.stderr
