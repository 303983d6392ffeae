"""The history document: files written by earlier openheim versions load, and save unchanged."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import attrs

from openheim.foundation.models import Conversation, Message, Reasoning, Role, ToolCall, Usage
from openheim.store import codec
from openheim.store.base import META_FIELDS, ConversationMeta
from openheim.store.files import FileHistoryStore

FIXTURES = Path(__file__).parent / "fixtures"
#: Written by openheim before ConversationMeta was derived from Conversation's fields.
FULL = FIXTURES / "v1_full.json"
#: The least a version 1 file holds; its tool arguments are an object, as other tools write.
MINIMAL = FIXTURES / "v1_minimal.json"


def test_meta_has_every_conversation_field_but_messages() -> None:
    """``messages`` and ``compactions`` are the body; everything else is the meta."""
    attrs.resolve_types(Conversation)
    attrs.resolve_types(ConversationMeta)
    body = ("messages", "compactions")
    conversation = [(f.name, f.type) for f in attrs.fields(Conversation) if f.name not in body]
    assert [(f.name, f.type) for f in attrs.fields(ConversationMeta)] == conversation
    assert tuple(name for name, _ in conversation) == META_FIELDS


def test_meta_and_conversation_convert_both_ways() -> None:
    conversation = Conversation(id="c", model="m", skills=("a",), usage=Usage(1, 2), cost_usd=0.5)
    conversation.append(Message.user("hi"))
    meta = ConversationMeta.of(conversation)
    assert (meta.id, meta.model, meta.title, meta.skills) == ("c", "m", "hi", ("a",))
    assert (meta.usage, meta.cost_usd, meta.updated_at) == (
        Usage(1, 2),
        0.5,
        conversation.updated_at,
    )
    assert meta.with_messages(list(conversation.messages)) == conversation


async def test_a_file_written_by_an_earlier_version_loads(tmp_path: Path) -> None:
    document = json.loads(FULL.read_text(encoding="utf-8"))
    conversation_id = document["meta"]["id"]
    shutil.copy(FULL, tmp_path / f"{conversation_id}.json")
    store = FileHistoryStore(tmp_path)

    loaded = await store.load(conversation_id)
    assert loaded.created_at == datetime(2025, 6, 1, 12, 30, tzinfo=UTC)
    assert loaded.updated_at == datetime(2025, 6, 1, 12, 34, 56, 789000, tzinfo=UTC)
    assert (loaded.model, loaded.provider, loaded.cwd) == ("gpt-4o", "openai", "/srv/work/alice")
    assert (loaded.title, loaded.skills) == ("What is in README.md?", ("rust",))
    assert loaded.usage == Usage(1200, 340, 100, 20) and loaded.cost_usd == 0.0064
    assert [m.role for m in loaded.messages] == [
        Role.SYSTEM,
        Role.USER,
        Role.ASSISTANT,
        Role.TOOL,
        Role.ASSISTANT,
        Role.TOOL,
        Role.ASSISTANT,
    ]
    assert loaded.messages[2].tool_calls == (
        ToolCall("call_abc123", "read_file", '{"path": "README.md"}', signature="c2lnbmF0dXJl"),
    )
    assert loaded.messages[5].is_error and not loaded.messages[3].is_error
    [meta] = await store.list()
    assert meta == ConversationMeta.of(loaded)

    # Saved again, the file is the same document: the on-disk format did not move.
    await store.save(loaded)
    assert json.loads(store.path_for(conversation_id).read_text(encoding="utf-8")) == document
    assert codec.to_document(loaded) == document


async def test_a_minimal_file_loads_with_defaults(tmp_path: Path) -> None:
    conversation_id = json.loads(MINIMAL.read_text(encoding="utf-8"))["meta"]["id"]
    shutil.copy(MINIMAL, tmp_path / f"{conversation_id}.json")
    store = FileHistoryStore(tmp_path)
    loaded = await store.load(conversation_id)
    assert (loaded.model, loaded.provider, loaded.title, loaded.cwd) == (None,) * 4
    assert (loaded.skills, loaded.usage, loaded.cost_usd) == ((), Usage(), None)
    assert loaded.messages[1].tool_calls == (ToolCall("call_1", "read_file", '{"path": "a.txt"}'),)
    assert loaded.messages[-1] == Message.assistant("hi")
    [meta] = await store.list()
    assert meta.id == conversation_id and meta.title is None


#: Thinking stored with assistant messages: text, the wire format, and the provider's blocks.
REASONING = FIXTURES / "v1_reasoning.json"


async def test_files_from_before_reasoning_load_without_it() -> None:
    for fixture in (FULL, MINIMAL):
        loaded = codec.from_document(json.loads(fixture.read_text(encoding="utf-8")))
        assert all(message.reasoning is None for message in loaded.messages)
        assert "reasoning" not in json.dumps(codec.to_document(loaded))


async def test_reasoning_round_trips_and_its_blocks_go_back_unchanged(tmp_path: Path) -> None:
    document = json.loads(REASONING.read_text(encoding="utf-8"))
    conversation_id = document["meta"]["id"]
    shutil.copy(REASONING, tmp_path / f"{conversation_id}.json")
    store = FileHistoryStore(tmp_path)

    loaded = await store.load(conversation_id)
    first = loaded.messages[1].reasoning
    assert first is not None
    assert (first.text, first.format) == ("I should read it first.", "anthropic")
    assert first.provider_blocks("anthropic") == document["messages"][1]["reasoning"]["blocks"]
    assert first.provider_blocks("gemini") == []
    assert loaded.messages[3].reasoning == Reasoning("It is short.", "openai-chat")
    assert loaded.messages[4].reasoning == Reasoning("Half a thou")

    await store.save(loaded)
    assert json.loads(store.path_for(conversation_id).read_text(encoding="utf-8")) == document
