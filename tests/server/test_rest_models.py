"""``/api/sessions`` bodies against OPENHEIM_SPEC.md, and apart from the history format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from openheim.foundation.models import Message, ToolCall, ToolResult, Usage
from openheim.server import rest_models
from openheim.session import ConversationMeta, Transcript
from openheim.store import codec
from openheim.testing import Reply
from tests.e2e.conftest import Home, home
from tests.server.client import connect, running_server
from tests.server.test_spec import json_blocks, spec_lines

__all__ = ["home"]


def spec_example(heading: str) -> Any:
    """The first ```json block after ``heading`` in OPENHEIM_SPEC.md."""
    at = spec_lines().index(heading) + 1
    return json.loads(next(body for line, body in json_blocks() if line > at))


def same_bytes(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def spec_meta(**overrides: Any) -> ConversationMeta:
    """The meta the spec's examples show."""
    fields: dict[str, Any] = {
        "id": "3f2b8c1e-5d6a-4b7c-9e8f-0a1b2c3d4e5f",
        "created_at": datetime(2025, 6, 1, 12, 30, tzinfo=UTC),
        "updated_at": datetime(2025, 6, 1, 12, 34, 56, 789000, tzinfo=UTC),
        "model": "gpt-4o",
        "provider": "openai",
        "title": "What is in README.md?",
        "cwd": "/srv/work/alice",
        "usage": Usage(input_tokens=1200, output_tokens=340),
    }
    return ConversationMeta(**(fields | overrides))


def test_the_listing_is_the_spec_example_key_for_key() -> None:
    meta = spec_meta(skills=("rust",), cost_usd=0.0064)
    body = rest_models.sessions_json([meta])
    # Same keys, same order, same values: the bytes a client gets are the documented ones.
    assert same_bytes(body) == same_bytes(spec_example("### GET /api/sessions"))


def test_unset_fields_are_left_out_of_a_listing() -> None:
    bare = ConversationMeta(
        id="i",
        created_at=datetime(2025, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
        updated_at=datetime(2025, 1, 1, 0, 0, 1, 500, tzinfo=UTC),
    )
    [body] = rest_models.sessions_json([bare])
    assert body == {
        "id": "i",
        "created_at": "2025-01-01T00:00:00.000Z",
        "updated_at": "2025-01-01T00:00:01.000Z",
        "skills": [],
        "usage": {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
        },
    }


def test_the_transcript_is_the_spec_example_key_for_key() -> None:
    call = ToolCall("call_abc123", "read_file", json.dumps({"path": "README.md"}))
    transcript = Transcript(
        spec_meta(),
        (
            Message.user("What is in README.md?"),
            Message.assistant(None, (call,)),
            Message.tool(call, ToolResult("# openheim\n")),
            Message.assistant("It is the project's readme."),
        ),
    )
    body = rest_models.transcript_json(transcript)
    assert same_bytes(body) == same_bytes(spec_example("### GET /api/sessions/{id}"))


def test_signatures_and_errors_appear_only_when_set() -> None:
    signed = ToolCall("c1", "read_file", "{}", signature="opaque")
    failed = ToolCall("c2", "execute_command", "{}")
    messages = (
        Message.system("Be brief."),
        Message.assistant("Looking.", (signed, failed)),
        Message.tool(signed, ToolResult("ok")),
        Message.tool(failed, ToolResult("exit 1", is_error=True)),
    )
    body = rest_models.transcript_json(Transcript(spec_meta(), messages))["messages"]
    assert body == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": "{}"},
                    "signature": "opaque",
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "execute_command", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "content": "ok", "tool_call_id": "c1", "tool_name": "read_file"},
        {
            "role": "tool",
            "content": "exit 1",
            "tool_call_id": "c2",
            "tool_name": "execute_command",
            "is_error": True,
        },
    ]


# --- the history format may change; the REST bodies do not ---------------------------------


def renamed_codec() -> Any:
    """The storage converter as a later history format might be: other key names."""
    converter = codec._make_converter()
    created, updated = override(rename="created"), override(rename="modified")
    converter.register_unstructure_hook(
        ConversationMeta,
        make_dict_unstructure_fn(
            ConversationMeta,
            converter,
            _cattrs_omit_if_default=True,
            created_at=created,
            updated_at=updated,
            title=override(rename="name", omit_if_default=True),
        ),
    )
    converter.register_structure_hook(
        ConversationMeta,
        make_dict_structure_fn(
            ConversationMeta,
            converter,
            created_at=created,
            updated_at=updated,
            title=override(rename="name"),
        ),
    )
    text = override(rename="text", omit_if_default=False)
    converter.register_unstructure_hook(
        Message,
        make_dict_unstructure_fn(
            Message,
            converter,
            _cattrs_omit_if_default=True,
            role=override(omit_if_default=False),
            content=text,
        ),
    )
    converter.register_structure_hook(
        Message, make_dict_structure_fn(Message, converter, content=text)
    )
    return converter


async def test_rest_bodies_do_not_follow_the_storage_format(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codec, "converter", renamed_codec())
    home.llm.script.extend(
        [Reply.tool_call("execute_command", {"command": "echo hi"}, id="call_1"), Reply.text("Hi.")]
    )
    async with running_server(home) as server, connect(server.ws_url) as client:
        await client.initialize()
        session_id = await client.new_session(home.workdir)
        await client.prompt(session_id, "say hi")

    stored = home.only_history()
    assert {"created", "modified", "name"} <= set(stored["meta"]), "the codec was not swapped"
    assert "text" in stored["messages"][0] and "created_at" not in stored["meta"]

    # A new server reads the conversation from history, through the swapped codec.
    async with running_server(home) as server, httpx.AsyncClient() as http:
        [listed] = (await http.get(f"{server.url}/api/sessions")).json()
        detail = (await http.get(f"{server.url}/api/sessions/{session_id}")).json()

    spec_meta_keys = set(spec_example("### GET /api/sessions")[0])
    assert set(listed) == spec_meta_keys - {"cost_usd"}
    assert listed["title"] == "say hi" and listed["id"] == session_id
    assert listed["created_at"].endswith("Z") and listed["cwd"] == str(home.workdir)
    assert detail["meta"] == listed
    assert [set(m) for m in detail["messages"]] == [
        {"role", "content"},
        {"role", "content", "tool_calls"},
        {"role", "content", "tool_call_id", "tool_name"},
        {"role", "content"},
    ]
    assert detail["messages"][0] == {"role": "user", "content": "say hi"}
    assert detail["messages"][-1] == {"role": "assistant", "content": "Hi."}
