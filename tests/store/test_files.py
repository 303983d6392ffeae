import errno
import json
import os
import uuid
from pathlib import Path

import pytest
import trio

from openheim.foundation.errors import HistoryError
from openheim.foundation.models import Conversation, Message, ToolCall, ToolResult
from openheim.store.files import FileHistoryStore


def sample_conversation() -> Conversation:
    conversation = Conversation(id=str(uuid.uuid4()), model="m", provider="p", cwd="/w")
    conversation.append(Message.user("list   the\nfiles " + "x" * 100))
    call = ToolCall("call_1", "execute_command", '{"command": "ls"}')
    conversation.append(Message.assistant(None, (call,)))
    conversation.append(Message.tool(call, ToolResult("a.txt\n")))
    conversation.append(Message.assistant("There is one file: a.txt ✓"))
    return conversation


async def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    store = FileHistoryStore(tmp_path)
    conversation = sample_conversation()
    await store.save(conversation)
    loaded = await store.load(conversation.id)
    assert loaded.messages == conversation.messages
    assert loaded.title == "list the"  # the first line, spaces folded
    assert loaded.created_at == conversation.created_at.replace(
        microsecond=conversation.created_at.microsecond // 1000 * 1000
    )


async def test_document_is_openai_shaped(tmp_path: Path) -> None:
    store = FileHistoryStore(tmp_path)
    conversation = sample_conversation()
    await store.save(conversation)
    document = json.loads(store.path_for(conversation.id).read_text())
    assert document["schema_version"] == 1
    assert document["meta"]["id"] == conversation.id
    assert document["meta"]["created_at"].endswith("Z")
    messages = document["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "execute_command", "arguments": '{"command": "ls"}'},
            }
        ],
    }
    assert messages[2] == {
        "role": "tool",
        "content": "a.txt\n",
        "tool_call_id": "call_1",
        "tool_name": "execute_command",
    }


async def test_list_is_newest_first_and_limited(tmp_path: Path) -> None:
    store = FileHistoryStore(tmp_path)
    ids = []
    for i in range(3):
        conversation = Conversation(id=str(uuid.uuid4()))
        conversation.append(Message.user(f"prompt {i}"))
        await store.save(conversation)
        ids.append(conversation.id)
        await trio.sleep(0.01)
    assert [m.id for m in await store.list()] == ids[::-1]
    assert [m.title for m in await store.list(limit=1)] == ["prompt 2"]


async def test_list_skips_corrupt_files_and_missing_folder(tmp_path: Path) -> None:
    assert await FileHistoryStore(tmp_path / "absent").list() == []
    store = FileHistoryStore(tmp_path)
    await store.save(sample_conversation())
    (tmp_path / f"{uuid.uuid4()}.json").write_text("{not json")
    assert len(await store.list()) == 1


async def test_load_errors_are_clear(tmp_path: Path) -> None:
    store = FileHistoryStore(tmp_path)
    with pytest.raises(HistoryError, match="invalid conversation id '../../etc/passwd'"):
        await store.load("../../etc/passwd")
    missing = str(uuid.uuid4())
    with pytest.raises(HistoryError, match=f"conversation {missing} not found"):
        await store.load(missing)
    bad = str(uuid.uuid4())
    (tmp_path / f"{bad}.json").write_text('{"schema_version": 9, "meta": {}}')
    with pytest.raises(HistoryError, match="schema_version 9 is not supported"):
        await store.load(bad)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
async def test_read_only_folder_fails_clearly_without_partial_file(tmp_path: Path) -> None:
    store = FileHistoryStore(tmp_path)
    conversation = sample_conversation()
    await store.save(conversation)
    before = store.path_for(conversation.id).read_bytes()
    tmp_path.chmod(0o500)
    try:
        conversation.append(Message.user("more"))
        with pytest.raises(HistoryError, match="cannot save conversation"):
            await store.save(conversation)
    finally:
        tmp_path.chmod(0o700)
    assert store.path_for(conversation.id).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{conversation.id}.json"]


async def test_disk_full_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileHistoryStore(tmp_path)
    conversation = sample_conversation()
    await store.save(conversation)
    before = store.path_for(conversation.id).read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("openheim.foundation.fsutil.os.fsync", disk_full)
    conversation.append(Message.user("more"))
    with pytest.raises(HistoryError, match="cannot save conversation .*No space left"):
        await store.save(conversation)
    assert store.path_for(conversation.id).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{conversation.id}.json"]


async def test_history_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "history").write_text("")
    store = FileHistoryStore(tmp_path / "history")
    with pytest.raises(HistoryError, match="cannot save conversation"):
        await store.save(sample_conversation())


async def test_history_is_private_to_its_owner(tmp_path: Path) -> None:
    store = FileHistoryStore(tmp_path / "home" / "history")
    conversation = sample_conversation()
    await store.save(conversation)
    tenant = store.for_tenant("alice")
    await tenant.save(sample_conversation())
    for folder in (
        tmp_path / "home",
        tmp_path / "home" / "history",
        tmp_path / "home" / "tenants",
        tmp_path / "home" / "tenants" / "alice" / "history",
    ):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert store.path_for(conversation.id).stat().st_mode & 0o777 == 0o600
    # A file the user opened up on purpose keeps its mode when rewritten.
    store.path_for(conversation.id).chmod(0o640)
    await store.save(conversation)
    assert store.path_for(conversation.id).stat().st_mode & 0o777 == 0o640
