"""One suite for every ``HistoryStore``: the embedded file store and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from openheim.config.model import StoreConfig
from openheim.config.paths import Paths
from openheim.foundation.errors import ConversationNotFoundError, HistoryError
from openheim.foundation.models import Conversation, Message, ToolCall, ToolResult, Usage
from openheim.store.base import HistoryStore
from openheim.store.select import open_history_store


@pytest.fixture(params=["file", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HistoryStore]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else "file"
    async with open_history_store(StoreConfig(), Paths(tmp_path), env={}, override=url) as opened:
        yield opened


def conversation(*, at: datetime | None = None, text: str = "list the files") -> Conversation:
    created = at or datetime.now(UTC)
    convo = Conversation(
        id=str(uuid.uuid4()),
        model="m",
        provider="p",
        cwd="/w",
        skills=("rust",),
        created_at=created,
        updated_at=created,
    )
    convo.append(Message.user(text))
    call = ToolCall("call_1", "execute_command", '{"command": "ls"}')
    convo.append(Message.assistant(None, (call,)))
    convo.append(Message.tool(call, ToolResult("a.txt\n", is_error=False)))
    convo.append(Message.assistant("There is one file: a.txt ✓ — 日本語"))
    convo.usage = Usage(input_tokens=120, output_tokens=30, cache_read_tokens=7)
    convo.cost_usd = 0.0123
    convo.updated_at = created
    return convo


def millis(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


async def test_round_trip_keeps_everything(store: HistoryStore) -> None:
    saved = conversation()
    await store.save(saved)
    loaded = await store.load(saved.id)
    assert loaded.messages == saved.messages
    assert (loaded.model, loaded.provider, loaded.cwd) == ("m", "p", "/w")
    assert loaded.skills == ("rust",) and loaded.title == "list the files"
    assert loaded.usage == saved.usage and loaded.cost_usd == pytest.approx(0.0123)
    assert millis(loaded.created_at) == millis(saved.created_at)
    assert millis(loaded.updated_at) == millis(saved.updated_at)


async def test_saving_again_replaces_the_conversation(store: HistoryStore) -> None:
    saved = conversation()
    await store.save(saved)
    saved.append(Message.user("and again"))
    saved.updated_at = saved.updated_at + timedelta(seconds=1)
    await store.save(saved)
    assert (await store.load(saved.id)).messages[-1] == Message.user("and again")
    assert [meta.id for meta in await store.list()] == [saved.id]


async def test_list_is_newest_first_limited_and_metadata_only(store: HistoryStore) -> None:
    assert await store.list() == []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    saved = [conversation(at=start + timedelta(minutes=i), text=f"task {i}") for i in range(5)]
    for convo in saved:
        await store.save(convo)
    metas = await store.list()
    assert [meta.id for meta in metas] == [c.id for c in reversed(saved)]
    assert [meta.title for meta in metas[:2]] == ["task 4", "task 3"]
    assert metas[0].usage == saved[4].usage and metas[0].skills == ("rust",)
    assert [meta.id for meta in await store.list(limit=2)] == [saved[4].id, saved[3].id]


async def test_unknown_and_malformed_ids_are_clear_errors(store: HistoryStore) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(ConversationNotFoundError, match=missing):
        await store.load(missing)
    with pytest.raises(HistoryError, match="expected a UUID"):
        await store.load("../../etc/passwd")


async def test_tenants_never_see_each_other(store: HistoryStore) -> None:
    alice, bob = store.for_tenant("alice"), store.for_tenant("bob")
    mine = conversation(text="alice's secret")
    await alice.save(mine)
    assert [meta.id for meta in await alice.list()] == [mine.id]
    assert await bob.list() == [] and await store.list() == []
    with pytest.raises(ConversationNotFoundError):
        await bob.load(mine.id)
    # The same id in another tenant is another conversation.
    theirs = conversation(text="bob's")
    theirs.id = mine.id
    await bob.save(theirs)
    assert (await alice.load(mine.id)).messages[0] == Message.user("alice's secret")
    assert (await bob.load(mine.id)).messages[0] == Message.user("bob's")


async def test_concurrent_saves_and_a_large_conversation(store: HistoryStore) -> None:
    many = [conversation(text=f"n{i}") for i in range(40)]
    async with trio.open_nursery() as nursery:
        for convo in many:
            nursery.start_soon(store.save, convo)
    assert len(await store.list()) == 40
    big = conversation()
    big.append(Message.user("x" * 2_000_000))
    await store.save(big)
    assert len((await store.load(big.id)).messages[-1].content or "") == 2_000_000


async def test_delete_forgets_one_conversation_of_one_tenant(store: HistoryStore) -> None:
    alice, bob = store.for_tenant("alice"), store.for_tenant("bob")
    kept, gone = conversation(text="kept"), conversation(text="gone")
    await alice.save(kept)
    await alice.save(gone)
    with pytest.raises(ConversationNotFoundError):
        await bob.delete(gone.id)  # another tenant's id is not bob's to delete
    await alice.delete(gone.id)
    assert [meta.id for meta in await alice.list()] == [kept.id]
    with pytest.raises(ConversationNotFoundError, match=gone.id):
        await alice.load(gone.id)
    with pytest.raises(ConversationNotFoundError, match=gone.id):
        await alice.delete(gone.id)
    with pytest.raises(HistoryError, match="expected a UUID"):
        await alice.delete("../kept")


async def test_compaction_records_round_trip_and_give_the_same_view(store: HistoryStore) -> None:
    from openheim.agent.compaction.view import view
    from openheim.foundation.models import Compaction, CompactionMethod

    saved = conversation()
    saved.compactions.append(
        Compaction(
            at=3,
            method=CompactionMethod.SUMMARY,
            tokens_before=900,
            tokens_after=300,
            upto=3,
            summary="listed the files",
            elided=(2,),
            truncated=((3, 500),),
        )
    )
    await store.save(saved)
    loaded = await store.load(saved.id)
    assert loaded.compactions == saved.compactions
    assert loaded.messages == saved.messages  # the transcript stays whole
    assert view(loaded) == view(saved) and len(view(loaded)) == 2
