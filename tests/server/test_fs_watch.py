"""The fs watcher: the pure batch and buffer cores by table, then real watches on tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from watchfiles import Change

from openheim.server.fs.channel import FsChannel, FsLimits
from openheim.server.fs.watcher import (
    CREATE_FILE,
    CREATE_FOLDER,
    MODIFY,
    REMOVE,
    RESCAN,
    EventBuffer,
    FsWatcher,
    PathState,
    classify_batch,
)
from tests.server.test_fs_channel import Message, Outbox
from tests.waiting import wait_until

A, M, D = Change.added, Change.modified, Change.deleted

# --- cores --------------------------------------------------------------------------------------


def fake_probe(states: dict[str, PathState]) -> Any:
    return lambda path: states.get(path, PathState(inside=True, exists=False, is_dir=False))


FILE = PathState(inside=True, exists=True, is_dir=False)
FOLDER = PathState(inside=True, exists=True, is_dir=True)
GONE = PathState(inside=True, exists=False, is_dir=False)
OUT = PathState(inside=False, exists=True, is_dir=False)


@pytest.mark.parametrize(
    ("changes", "state", "expected"),
    [
        ({A}, FILE, [(CREATE_FILE, "/r/p")]),
        ({A}, FOLDER, [(CREATE_FOLDER, "/r/p")]),
        ({M}, FILE, [(MODIFY, "/r/p")]),
        ({D}, GONE, [(REMOVE, "/r/p")]),
        ({A, D}, GONE, []),  # a temp file that came and went
        ({A, D}, FILE, [(CREATE_FILE, "/r/p")]),  # replaced
        ({D}, FILE, [(CREATE_FILE, "/r/p")]),  # deleted, then back
        ({A, M}, FILE, [(CREATE_FILE, "/r/p")]),
        ({M, D}, GONE, [(REMOVE, "/r/p")]),
        ({A}, OUT, []),  # reached through a link out of the root
        ({D}, OUT, []),
    ],
)
def test_classify_batch(
    changes: set[Change], state: PathState, expected: list[tuple[str, str]]
) -> None:
    raw = {(int(change), "/r/p") for change in changes}
    assert classify_batch(raw, fake_probe({"/r/p": state})) == expected


def test_classify_batch_sorts_paths() -> None:
    raw = {(int(A), "/r/b"), (int(A), "/r/a"), (int(M), "/r/a/x")}
    states = {"/r/a": FOLDER, "/r/b": FILE, "/r/a/x": FILE}
    assert classify_batch(raw, fake_probe(states)) == [
        (CREATE_FOLDER, "/r/a"),
        (MODIFY, "/r/a/x"),
        (CREATE_FILE, "/r/b"),
    ]


def test_event_buffer_groups_and_orders() -> None:
    buffer = EventBuffer("/r", max_paths=10)
    assert not buffer
    buffer.add(MODIFY, "/r/m")
    buffer.add(CREATE_FILE, "/r/c2")
    buffer.add(CREATE_FILE, "/r/c1")
    buffer.add(REMOVE, "/r/gone")
    buffer.add(CREATE_FOLDER, "/r/d")
    assert buffer.take() == [
        {"type": "fs_event", "event_kind": REMOVE, "paths": ["/r/gone"]},
        {"type": "fs_event", "event_kind": CREATE_FOLDER, "paths": ["/r/d"]},
        {"type": "fs_event", "event_kind": CREATE_FILE, "paths": ["/r/c1", "/r/c2"]},
        {"type": "fs_event", "event_kind": MODIFY, "paths": ["/r/m"]},
    ]
    assert not buffer
    assert buffer.take() == []


def test_event_buffer_coalesces_per_path() -> None:
    buffer = EventBuffer("/r", max_paths=10)
    buffer.add(CREATE_FILE, "/r/a")
    buffer.add(MODIFY, "/r/a")  # still news of a new file
    buffer.add(MODIFY, "/r/b")
    buffer.add(REMOVE, "/r/b")  # the latest word wins
    assert buffer.take() == [
        {"type": "fs_event", "event_kind": REMOVE, "paths": ["/r/b"]},
        {"type": "fs_event", "event_kind": CREATE_FILE, "paths": ["/r/a"]},
    ]


def test_event_buffer_overflows_into_one_rescan() -> None:
    buffer = EventBuffer("/r/watched", max_paths=3)
    for i in range(3):
        buffer.add(CREATE_FILE, f"/r/watched/{i}")
    buffer.add(MODIFY, "/r/watched/0")  # a known path does not count twice
    buffer.add(CREATE_FILE, "/r/watched/new")
    buffer.add(CREATE_FILE, "/r/watched/more")
    assert buffer.take() == [{"type": "fs_event", "event_kind": RESCAN, "paths": ["/r/watched"]}]
    buffer.add(MODIFY, "/r/watched/0")
    assert buffer.take() == [{"type": "fs_event", "event_kind": MODIFY, "paths": ["/r/watched/0"]}]


# --- real watches -------------------------------------------------------------------------------

FAST = FsLimits(watch_debounce_ms=100, watch_step_ms=20)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    return tmp_path / "outside"


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "out_dir").symlink_to(outside)
    return (tmp_path / "root").resolve()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
async def channel(root: Path, outbox: Outbox, nursery: trio.Nursery) -> AsyncIterator[FsChannel]:
    channel = FsChannel(root, outbox.send, nursery, FAST)
    yield channel
    await channel.close()


async def request(channel: FsChannel, outbox: Outbox, **data: Any) -> Message:
    await channel.handle(data)
    return await outbox.wait_for(lambda m: m["type"] != "fs_event")


def event_for(kind: str, path: Path) -> Any:
    return lambda m: m["type"] == "fs_event" and m["event_kind"] == kind and str(path) in m["paths"]


async def test_watch_reports_create_modify_delete(
    channel: FsChannel, outbox: Outbox, root: Path
) -> None:
    assert await request(channel, outbox, action="watch", path="", id=1) == {
        "type": "watching",
        "path": "",
        "id": 1,
    }
    with trio.fail_after(2):
        (root / "new.txt").write_text("1")
        await outbox.wait_for(event_for(CREATE_FILE, root / "new.txt"))
        (root / "dir").mkdir()
        await outbox.wait_for(event_for(CREATE_FOLDER, root / "dir"))
        with (root / "new.txt").open("a") as f:
            f.write("2")
        await outbox.wait_for(event_for(MODIFY, root / "new.txt"))
        (root / "new.txt").unlink()
        await outbox.wait_for(event_for(REMOVE, root / "new.txt"))
        (root / "sub" / "deep.txt").write_text("x")  # recursive
        await outbox.wait_for(event_for(CREATE_FILE, root / "sub" / "deep.txt"))


async def test_watch_a_subfolder_and_replace_it(
    channel: FsChannel, outbox: Outbox, root: Path
) -> None:
    (root / "other").mkdir()
    assert (await request(channel, outbox, action="watch", path="sub"))["type"] == "watching"
    with trio.fail_after(2):
        (root / "sub" / "a").write_text("")
        await outbox.wait_for(event_for(CREATE_FILE, root / "sub" / "a"))
    assert (await request(channel, outbox, action="watch", path="other"))["type"] == "watching"
    with trio.fail_after(2):
        (root / "sub" / "b").write_text("")
        (root / "other" / "c").write_text("")
        await outbox.wait_for(event_for(CREATE_FILE, root / "other" / "c"))
    assert not any(str(root / "sub" / "b") in m.get("paths", ()) for m in outbox.history)


async def test_unwatch_stops_events(outbox: Outbox, root: Path, nursery: trio.Nursery) -> None:
    channel = FsChannel(root, outbox.send, nursery, FAST)  # in a nursery this test can inspect
    await request(channel, outbox, action="watch", path=str(root))
    with trio.fail_after(2):
        (root / "one").write_text("")
        await outbox.wait_for(event_for(CREATE_FILE, root / "one"))
    assert await request(channel, outbox, action="unwatch") == {"type": "unwatched"}
    # No wait can show that nothing will come; this can: the watcher's task (the only one the
    # channel runs in its nursery) has ended, so nothing is left that could send.
    assert nursery.child_tasks == frozenset()
    (root / "two").write_text("")
    await trio.testing.wait_all_tasks_blocked()
    assert outbox.take_all() == []


async def test_links_out_of_the_root_are_not_reported(
    channel: FsChannel, outbox: Outbox, root: Path, outside: Path
) -> None:
    await request(channel, outbox, action="watch", path="")
    with trio.fail_after(2):
        (outside / "secret.txt").write_text("x")  # seen by watchfiles as root/out_dir/secret.txt
        # One watcher reports changes in order: the secret's batch is done once the marker's is.
        (root / "marker").write_text("")
        await outbox.wait_for(event_for(CREATE_FILE, root / "marker"))
    paths = [p for m in outbox.history for p in m.get("paths", ())]
    assert paths
    assert all(p.startswith(str(root)) and "out_dir" not in p for p in paths)


async def test_watch_errors(channel: FsChannel, outbox: Outbox, root: Path) -> None:
    (root / "f").write_text("")
    assert await request(channel, outbox, action="watch", path="f") == {
        "type": "error",
        "message": "Invalid directory: f",
    }
    assert await request(channel, outbox, action="watch", path="missing") == {
        "type": "error",
        "message": "Invalid directory: missing",
    }
    assert await request(channel, outbox, action="unwatch") == {"type": "unwatched"}


async def test_close_stops_the_watcher_promptly(root: Path, outbox: Outbox) -> None:
    async with trio.open_nursery() as nursery:
        channel = FsChannel(root, outbox.send, nursery, FsLimits(watch_step_ms=20))
        await request(channel, outbox, action="watch", path="")
        with trio.fail_after(1):  # the thread leaves watchfiles on its stop event, in a step
            await channel.close()
    # The nursery has exited, so no task of the channel is left that could send; no wait needed.
    (root / "late").write_text("")
    assert outbox.take_all() == []


async def test_cancelling_the_connection_ends_the_watcher(root: Path, outbox: Outbox) -> None:
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            channel = FsChannel(root, outbox.send, nursery, FAST)
            await request(channel, outbox, action="watch", path="")
            nursery.cancel_scope.cancel()


async def test_a_slow_client_gets_a_rescan_not_a_backlog(root: Path) -> None:
    sent: list[Message] = []
    taken, release, rescanned = trio.Event(), trio.Event(), trio.Event()

    async def slow_send(message: Message) -> None:
        taken.set()
        await release.wait()
        sent.append(message)
        if message["event_kind"] == RESCAN:
            rescanned.set()

    async with trio.open_nursery() as nursery:
        watcher = FsWatcher(
            str(root), str(root), slow_send, debounce_ms=50, step_ms=10, max_pending=3
        )
        await nursery.start(watcher.run)
        (root / "first").write_text("")
        with trio.fail_after(2):
            await taken.wait()  # the first batch is taken and now waits on the client
        for i in range(10):
            (root / f"f{i}").write_text("")
        # The collector drains watchfiles meanwhile; its buffer overflowing sets no event.
        await wait_until(lambda: watcher._buffer._overflow, seconds=2, what="the overflow")
        release.set()
        with trio.fail_after(2):
            await rescanned.wait()
        await watcher.stop()
    assert sent[0] == {
        "type": "fs_event",
        "event_kind": CREATE_FILE,
        "paths": [str(root / "first")],
    }
    assert sent[1] == {"type": "fs_event", "event_kind": RESCAN, "paths": [str(root)]}
    assert len(sent) == 2


async def test_a_closed_outbound_side_ends_the_watcher_quietly(root: Path) -> None:
    send_channel, receive_channel = trio.open_memory_channel[Message](1)
    await receive_channel.aclose()
    watcher = FsWatcher(str(root), str(root), send_channel.send, debounce_ms=50, step_ms=10)
    with trio.fail_after(2):
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run)
            (root / "x").write_text("")
        # run() returned by itself, without raising into the connection's nursery


async def test_watchers_per_process_are_capped(
    root: Path, outbox: Outbox, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("openheim.server.fs.watcher.MAX_WATCHERS", 1)
    first = FsChannel(root, outbox.send, nursery, FAST)
    second = FsChannel(root, outbox.send, nursery, FAST)
    assert (await request(first, outbox, action="watch", path=""))["type"] == "watching"
    assert await request(second, outbox, action="watch", path="sub") == {
        "type": "error",
        "message": "Failed to create watcher: too many watchers",
    }
    await request(first, outbox, action="unwatch")
    assert (await request(second, outbox, action="watch", path="sub"))["type"] == "watching"
    await second.close()
