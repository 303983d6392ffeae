"""SIGKILL of a process while it writes history: the file is always a whole version.

``history_writer.py`` saves a conversation of a few MB through ``FileHistoryStore`` over and
over, a new version each time; it is killed at random moments, half of them the instant a
temp file shows up (the middle of a write). After every kill the file must parse and be
exactly the last version the writer reported saved, or the one it was writing; temp files
the kills leave behind must never be listed as conversations.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import uuid
from pathlib import Path

import attrs
import trio

from openheim.store.files import FileHistoryStore
from tests.faults.conftest import FULL
from tests.faults.history_writer import conversation, version_of

WRITER = Path(__file__).with_name("history_writer.py")
KILLS = 200 if FULL else 20
TIMEOUT = 10


@attrs.frozen
class Killed:
    """One writer's life: the last version it reported saved, and temp files it left."""

    saved: int
    temp_files: frozenset[str]


def temp_files(folder: Path) -> set[str]:
    return {path.name for path in folder.glob(".*.tmp")}


async def new_temp_file(folder: Path, leftovers: set[str]) -> None:
    """Until a save has begun: another process makes the file, so only polling can see it.

    Not ``wait_until``: the 1 ms poll is the subject, the kill must land inside the write.
    """
    while not temp_files(folder) - leftovers:  # noqa: ASYNC110
        await trio.sleep(0.001)


async def write_then_kill(
    folder: Path, conversation_id: str, version: int, delay: float, mid_write: bool, log: Path
) -> Killed:
    """Start a writer at ``version``; kill it ``delay`` s after it is ready, or with
    ``mid_write`` as soon as a new temp file appears after that."""
    leftovers = temp_files(folder)
    command = [sys.executable, str(WRITER), str(folder), conversation_id, str(version)]
    with log.open("ab") as stderr:
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
    assert process.stdout is not None
    output = b""
    try:
        with trio.fail_after(TIMEOUT):
            while b"ready\n" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, f"the writer exited early: {log.read_text()}"
                output += chunk
            await trio.sleep(delay)  # stays: a random kill moment is the subject, not a wait
            if mid_write:
                await new_temp_file(folder, leftovers)
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
    while chunk := await process.stdout.receive_some():
        output += chunk
    await process.stdout.aclose()
    saved = [
        int(line.split()[1]) for line in output.decode().splitlines() if line.startswith("saved")
    ]
    return Killed(saved[-1] if saved else version, frozenset(temp_files(folder) - leftovers))


async def test_sigkill_during_history_writes_keeps_a_whole_version(tmp_path: Path) -> None:
    folder = tmp_path / "history"
    store = FileHistoryStore(folder)
    conversation_id = str(uuid.uuid4())
    await store.save(conversation(conversation_id, 0))
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    version, torn = 0, 0
    for kill in range(KILLS):
        mid_write = kill % 2 == 1
        delay = rng.uniform(0, 0.05 if mid_write else 0.15)
        killed = await write_then_kill(
            folder, conversation_id, version, delay, mid_write, tmp_path / "writer.log"
        )
        context = f"kill {kill} (seed {seed}): {killed}"
        document = json.loads((folder / f"{conversation_id}.json").read_bytes())
        assert document["meta"]["id"] == conversation_id, context
        loaded = await store.load(conversation_id)
        found = version_of(loaded)
        assert found in (killed.saved, killed.saved + 1), context
        assert loaded.messages == conversation(conversation_id, found).messages, context
        assert [meta.id for meta in await store.list()] == [conversation_id], context
        torn += bool(killed.temp_files)
        version = found
    print(f"{KILLS} kills, {version} versions written, {torn} kills left a temp file behind")
    assert version > 0  # the writers got to write, not only to start
    assert torn >= 1  # some kills really landed in the middle of a write
