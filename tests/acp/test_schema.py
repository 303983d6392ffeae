"""AgentEvents and stored conversations as ACP updates; prompt content as prompt text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openheim.acp import schema, session_state, tool_updates
from openheim.acp.codec import INVALID_PARAMS, RpcError
from openheim.agent.events import (
    MessageChunk,
    ProviderRetrying,
    StopReason,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from openheim.config.load import parse_config
from openheim.config.resolve import resolve_model
from openheim.foundation.models import (
    Conversation,
    Message,
    ReasoningLevel,
    ToolCall,
    ToolResult,
    Usage,
)
from openheim.permissions import Answer, Mode
from openheim.store.base import ConversationMeta

CWD = Path("/work/project")


def call(name: str, arguments: Any, id: str = "c1") -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id, name, text)


def test_message_chunk() -> None:
    assert schema.updates_for(MessageChunk("hi"), CWD) == [
        {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "hi"}}
    ]
    assert schema.updates_for(MessageChunk(""), CWD) == []


@pytest.mark.parametrize(
    ("tool", "arguments", "kind", "title", "locations"),
    [
        ("execute_command", {"command": "ls  -la\n  src"}, "execute", "ls -la src", None),
        ("read_file", {"path": "a.txt"}, "read", "Read a.txt", [{"path": "/work/project/a.txt"}]),
        (
            "read_file",
            {"path": "/etc/hosts", "offset": 5},
            "read",
            "Read /etc/hosts",
            [{"path": "/etc/hosts", "line": 5}],
        ),
        ("write_file", {"path": "b/c.py", "content": "x"}, "edit", "Write b/c.py", None),
        ("github__search", {"q": "x"}, "other", "github__search", None),
        ("execute_command", "{not json", "execute", "execute_command", None),
    ],
)
def test_tool_call_started(
    tool: str, arguments: Any, kind: str, title: str, locations: list[Any] | None
) -> None:
    (update,) = schema.updates_for(ToolCallStarted(call(tool, arguments)), CWD)
    assert update["sessionUpdate"] == "tool_call" and update["toolCallId"] == "c1"
    assert update["kind"] == kind and update["title"] == title
    assert update["status"] == "pending"
    assert update["rawInput"] == arguments
    if tool == "write_file":
        locations = [{"path": "/work/project/b/c.py"}]
    assert update.get("locations") == locations


def test_long_command_title_is_shortened() -> None:
    title = tool_updates.tool_title(call("execute_command", {"command": "echo " + "x" * 500}))
    assert len(title) == 120 and title.endswith("…")


@pytest.mark.parametrize(("is_error", "status"), [(False, "completed"), (True, "failed")])
def test_tool_call_finished(is_error: bool, status: str) -> None:
    event = ToolCallFinished(call("read_file", {"path": "a"}), ToolResult("out", is_error), 0.1)
    assert schema.updates_for(event, CWD) == [
        {
            "sessionUpdate": "tool_call_update",
            "toolCallId": "c1",
            "status": status,
            "content": [{"type": "content", "content": {"type": "text", "text": "out"}}],
            "rawOutput": "out",
        }
    ]


def test_events_without_an_update() -> None:
    assert schema.updates_for(ProviderRetrying("429", 1, 3, 1.0), CWD) == []
    assert schema.updates_for(TurnFinished(StopReason.END_TURN, Usage(), 1), CWD) == []


def test_replay_of_a_stored_conversation() -> None:
    ok, bad = call("execute_command", {"command": "ls"}, "a"), call("read_file", {"path": "x"}, "b")
    conversation = Conversation(
        id="id",
        messages=[
            Message.system("ignored"),
            Message.user("list things"),
            Message.assistant("Looking.", (ok, bad)),
            Message.tool(ok, ToolResult("a.txt\n")),
            Message.tool(bad, ToolResult("File not found: x", is_error=True)),
            Message.assistant("Found a.txt."),
        ],
    )
    replayed = list(schema.replay(conversation, CWD))
    assert [(u["sessionUpdate"], u.get("status")) for u in replayed] == [
        ("user_message_chunk", None),
        ("agent_message_chunk", None),
        ("tool_call", "completed"),
        ("tool_call", "failed"),
        ("agent_message_chunk", None),
    ]
    assert replayed[0]["content"] == {"type": "text", "text": "list things"}
    assert replayed[2]["toolCallId"] == "a" and replayed[2]["rawOutput"] == "a.txt\n"
    assert replayed[3]["content"][0]["content"]["text"] == "File not found: x"
    assert replayed[3]["locations"] == [{"path": "/work/project/x"}]


def test_replay_of_a_call_without_result_stays_pending() -> None:
    pending = call("execute_command", {"command": "ls"})
    conversation = Conversation(id="id", messages=[Message.assistant(None, (pending,))])
    (update,) = schema.replay(conversation, CWD)
    assert update["status"] == "pending" and "content" not in update


# --- prompts ---------------------------------------------------------------------------------


def test_prompt_text_blocks_are_joined() -> None:
    blocks = [
        {"type": "text", "text": "Look at this:"},
        {"type": "resource_link", "uri": "file:///p/a.py", "name": "a.py", "mimeType": "text/x"},
        {"type": "resource", "resource": {"uri": "file:///p/b.md", "text": "has ``` inside"}},
        {"type": "resource", "resource": {"uri": "file:///p/c.png", "blob": "AAA="}},
    ]
    assert schema.prompt_text(blocks).text == (
        "Look at this:\n"
        "[Resource: a.py <file:///p/a.py> (mimeType: text/x)]\n"
        "file:///p/b.md:\n````\nhas ``` inside\n````\n"
        "[Embedded resource file:///p/c.png: binary content, not shown]"
    )


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        ([], "non-empty"),
        (None, "non-empty"),
        ([{"type": "image", "data": "", "mimeType": "image/png"}], "the image/png image is empty"),
        ([{"type": "audio", "data": "", "mimeType": "audio/wav"}], "promptCapabilities.audio"),
        ([{"type": "video"}], "unknown content block type 'video'"),
        ([{"type": "text"}], '"text" content block needs a string "text"'),
        (["hi"], "must be an object"),
        ([{"type": "text", "text": "  "}], "no text"),
        ([{"type": "resource", "resource": {"text": "x"}}], '"uri"'),
    ],
)
def test_prompt_content_we_cannot_take_is_invalid_params(blocks: Any, problem: str) -> None:
    with pytest.raises(RpcError) as caught:
        schema.prompt_text(blocks)
    assert caught.value.code == INVALID_PARAMS and problem in caught.value.message


# --- permissions, sessions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "answer"),
    [
        ({"outcome": {"outcome": "selected", "optionId": "allow_once"}}, Answer.ALLOW_ONCE),
        ({"outcome": {"outcome": "selected", "optionId": "reject_always"}}, Answer.REJECT_ALWAYS),
        ({"outcome": {"outcome": "selected", "optionId": "allow"}}, None),
        ({"outcome": {"outcome": "cancelled"}}, None),
        ({}, None),
        (None, None),
    ],
)
def test_permission_answer(result: Any, answer: Answer | None) -> None:
    assert schema.permission_answer(result) is answer


def test_permission_request() -> None:
    params = schema.permission_request("s", call("write_file", {"path": "a", "content": ""}), CWD)
    assert params["toolCall"] == {
        "toolCallId": "c1",
        "title": "Write a",
        "kind": "edit",
        "rawInput": {"path": "a", "content": ""},
        "locations": [{"path": "/work/project/a"}],
    }
    assert [o["kind"] for o in params["options"]] == [a.value for a in Answer]


def test_mcp_servers() -> None:
    servers = schema.mcp_servers(
        [
            {
                "name": "fs",
                "command": "npx",
                "args": ["-y", "srv"],
                "env": [{"name": "K", "value": "v"}],
            },
            {"type": "stdio", "name": "two", "command": "srv", "args": [], "env": []},
            {
                "type": "http",
                "name": "web",
                "url": "https://x/mcp",
                "headers": [{"name": "A", "value": "b"}],
            },
        ]
    )
    assert [s.transport for s in servers] == ["stdio", "stdio", "http"]
    assert servers[0].args == ("-y", "srv") and servers[0].env == {"K": "v"}
    assert servers[2].headers == {"A": "b"}
    assert schema.mcp_servers(None) == ()


@pytest.mark.parametrize(
    ("servers", "problem"),
    [
        ({}, "must be an array"),
        ([{"name": "x", "command": "c", "args": [], "env": {"K": "v"}}], "{name, value}"),
        ([{"type": "sse", "name": "x", "url": "http://x"}], "SSE"),
        ([{"type": "http", "name": "x", "url": "ftp://x", "headers": []}], "http(s)"),
        ([{"name": "x", "command": "c"}, {"name": "x", "command": "d"}], "used twice"),
        ([{"command": "c"}], '"name"'),
    ],
)
def test_invalid_mcp_servers(servers: Any, problem: str) -> None:
    with pytest.raises(RpcError) as caught:
        schema.mcp_servers(servers)
    assert caught.value.code == INVALID_PARAMS and problem in caught.value.message


def test_config_options_include_an_unlisted_current_model(tmp_path: Path) -> None:
    config = parse_config(
        """
default_provider = "b"
[providers.b]
api_base = "http://x"
models = ["m1", "m2"]
[providers.a]
api_base = "http://y"
models = ["n"]
""",
        tmp_path / "config.toml",
    )
    listed = session_state.config_options(
        config, resolve_model(config, None), Mode.CODE, ReasoningLevel.OFF
    )[0]
    assert listed["currentValue"] == "b/m1"
    assert [o["value"] for o in listed["options"]] == ["a/n", "b/m1", "b/m2"]
    unlisted = session_state.config_options(
        config, resolve_model(config, "b/custom"), Mode.CODE, ReasoningLevel.OFF
    )[0]
    assert unlisted["options"][0]["value"] == "b/custom"
    assert schema.models_meta(config)["providers"] == {
        "a": {"default_model": "n", "models": ["n"]},
        "b": {"default_model": "m1", "models": ["m1", "m2"]},
    }


def test_session_info() -> None:
    when = datetime(2026, 5, 10, 14, 22, 15, 123456, tzinfo=UTC)
    meta = ConversationMeta(id="i", created_at=when, updated_at=when, title="t", cwd="/p")
    assert schema.session_info(meta) == {
        "sessionId": "i",
        "cwd": "/p",
        "title": "t",
        "updatedAt": "2026-05-10T14:22:15.123Z",
    }
    untitled = ConversationMeta(id="i", created_at=when, updated_at=when)
    assert schema.session_info(untitled) == {
        "sessionId": "i",
        "cwd": "/",
        "updatedAt": "2026-05-10T14:22:15.123Z",
    }


def test_a_compaction_is_a_tagged_thought_and_marks_its_place_in_the_replay() -> None:
    from openheim.agent.events import Compacted
    from openheim.foundation.models import Compaction, CompactionMethod, Conversation, Message

    notice = schema.updates_for(Compacted(9000, 3000, "summary"), Path("/w"))
    assert notice == [
        {
            "sessionUpdate": "agent_thought_chunk",
            "content": {
                "type": "text",
                "text": "[context compacted (summary): ~9,000 -> ~3,000 tokens]\n",
            },
            "_meta": {
                "openheim.dev": {
                    "compaction": {"method": "summary", "tokensBefore": 9000, "tokensAfter": 3000}
                }
            },
        }
    ]
    conversation = Conversation(id="c")
    for text in ("one", "two"):
        conversation.append(Message.user(text))
        conversation.append(Message.assistant(f"answer {text}"))
    conversation.compactions.append(Compaction(2, CompactionMethod.DROP, 50, 20, upto=2, dropped=2))
    conversation.compactions.append(Compaction(4, CompactionMethod.SUMMARY, 40, 10, upto=4))
    kinds = [
        (update["sessionUpdate"], "_meta" in update)
        for update in schema.replay(conversation, Path("/w"))
    ]
    assert kinds == [
        ("user_message_chunk", False),
        ("agent_message_chunk", False),
        ("agent_thought_chunk", True),
        ("user_message_chunk", False),
        ("agent_message_chunk", False),
        ("agent_thought_chunk", True),
    ]
