"""The history folder refuses a save (disk full, read-only): the turn's caller gets a
``HistoryError`` naming the file and the cause, the previous version of the file is intact, no
temp file is left, and once the fault clears the next turn saves everything, the turn whose
save failed included (it was kept in memory)."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from openheim.foundation.errors import HistoryError, ProviderError
from openheim.testing import HttpError, Reply
from tests.faults.conftest import Harness, assistant, run_turn, session_with_history, user

PRIOR = [user("hello"), assistant("Hi.")]


def in_folder(folder: Path, path: str | bytes | os.PathLike[str]) -> bool:
    return Path(os.fsdecode(path)).parent == folder


@contextmanager
def disk_full(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """``fsync`` of a file in ``folder`` fails with ENOSPC, as it does when delayed
    allocation finds no room; the data is written by then, so a real partial temp file exists
    and must be cleaned up. Yields the paths that failed."""
    real_fsync = os.fsync
    failed: list[str] = []

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if in_folder(folder, path) and not os.path.isdir(path):
            failed.append(path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        yield failed


@contextmanager
def read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Make ``folder`` refuse new files for real and yield the error text to expect: mode
    0o500 for a normal user; for root, who ignores modes, the immutable attribute (chattr +i,
    ext4 and tmpfs on Linux ≥ 6.0). Where neither is possible, ``os.open`` of a file there
    fails with EROFS."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield os.strerror(errno.EACCES)
        finally:
            folder.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode == 0:
        try:
            yield os.strerror(errno.EPERM)
        finally:
            subprocess.run([chattr, "-i", str(folder)], check=True)
        return
    real_open: Callable[..., int] = os.open

    def refuse(path: str | bytes | os.PathLike[str], flags: int, *args: int, **kw: int) -> int:
        if flags & os.O_CREAT and in_folder(folder, path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *args, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refuse)
        yield os.strerror(errno.EROFS)


async def check_refused_save_then_recovery(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        path = harness.history_dir / f"{session.id}.json"
        previous = path.read_bytes()
        harness.llm.script.append(Reply.text("Noted."))
        if fault == "disk-full":
            with disk_full(harness.history_dir, monkeypatch) as failed:
                outcome = await run_turn(session, "remember this")
            assert len(failed) == 1 and Path(failed[0]).name.endswith(".tmp")
            cause = os.strerror(errno.ENOSPC)
        else:
            with read_only(harness.history_dir, monkeypatch) as cause:
                outcome = await run_turn(session, "remember this")
        # The model answered and the caller saw it; then the save failed, and said why.
        assert outcome.text == "Noted."
        assert outcome.finished is not None and outcome.finished.stop_reason == "end_turn"
        assert isinstance(outcome.error, HistoryError)
        assert str(outcome.error) == f"cannot save conversation to {path}: {cause}"
        assert path.read_bytes() == previous
        # Beside the file only the live session's lock, no temp file.
        lock = f"{session.id}.lock"
        assert sorted(p.name for p in harness.history_dir.iterdir()) == [path.name, lock]
        assert [meta.id for meta in await client.list_sessions()] == [session.id]
        turn = [user("remember this"), assistant("Noted.")]
        await harness.check_reusable(session, before=[*PRIOR, *turn])


async def test_disk_full_during_a_history_save(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await check_refused_save_then_recovery(harness, monkeypatch, "disk-full")


async def test_read_only_history_folder(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    await check_refused_save_then_recovery(harness, monkeypatch, "read-only")


async def test_a_save_failing_after_a_failed_turn_is_not_silent(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two faults in one turn: the caller gets the provider's error, and the failed save is
    logged (at the default level, so ``run`` and ``serve`` show it) instead of dropped."""
    async with harness.open() as client:
        session = await session_with_history(harness, client)
        path = harness.history_dir / f"{session.id}.json"
        harness.llm.script.append(HttpError(400, body="no such model"))
        with disk_full(harness.history_dir, monkeypatch), caplog.at_level(logging.WARNING):
            outcome = await run_turn(session, "remember this")
        assert isinstance(outcome.error, ProviderError) and "no such model" in str(outcome.error)
        cause = f"cannot save conversation to {path}: {os.strerror(errno.ENOSPC)}"
        assert [r.getMessage() for r in caplog.records] == [f"session {session.id}: {cause}"]
        assert harness.stored(session.id) == PRIOR
        await harness.check_reusable(session, before=[*PRIOR, user("remember this")])
