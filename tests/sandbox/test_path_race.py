"""Symlink-swap races: a folder of alice's turns into a link to bob's workspace and back, as
fast as a thread can swap them, while alice's file tools and fs channel use it.

Nothing of bob's may come back, nothing may land in bob's folder, and every answer is either
alice's content or a clean error (no exception, no "Internal error"). A naive ``open`` in the
same race shows the race is live: it does read bob's secret.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import errno
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from openheim.foundation.models import ToolResult
from openheim.sandbox.policy import SandboxPolicy
from openheim.sandbox.sandbox import NoBackend, Sandbox
from openheim.server.fs.channel import delete_sync, read_sync, write_sync
from openheim.server.fs.paths import OUTSIDE_MESSAGE, FsError
from openheim.tools.base import ToolContext
from openheim.tools.files import ReadFileTool, WriteFileTool

SECRET = "bob-secret"
READS = 3000
WRITES = 1000
FS_ROUNDS = 1000
NAIVE_READS = 1000
#: Seconds a test may go on past its count until both states of the race were met.
EXTRA_TIME = 4.0

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchanger() -> Callable[[bytes, bytes], int] | None:
    """``renameat2(RENAME_EXCHANGE)``: swaps two names in one step, so ``dir`` always exists
    (as the folder or as the link) and a write never finds it missing and creates it."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return None

    def exchange(a: bytes, b: bytes) -> int:
        if renameat2(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE) != 0:
            return ctypes.get_errno()
        return 0

    return exchange


class Tenants:
    """``alice/dir`` (holding ``f.txt``) and ``alice/.swap`` (a link to ``bob/``) trading places
    in a thread until ``stop``."""

    def __init__(self, base: Path) -> None:
        self.alice, self.bob = base / "alice", base / "bob"
        (self.alice / "dir").mkdir(parents=True)
        (self.alice / "dir" / "f.txt").write_text("alice")
        self.bob.mkdir()
        (self.bob / "f.txt").write_text(SECRET)
        (self.alice / ".swap").symlink_to(self.bob)
        self.swaps = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-4)  # hand the GIL over often: swaps land between our steps
        exchange = _exchanger()
        a, b = bytes(self.alice / "dir"), bytes(self.alice / ".swap")
        if exchange is None or exchange(a, b) in (errno.EINVAL, errno.ENOSYS):
            pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")

        def swap() -> None:
            while not self._stop.is_set():
                assert exchange(a, b) == 0
                self.swaps += 1

        self._thread = threading.Thread(target=swap, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the race; then ``alice/dir`` or ``alice/.swap`` is alice's real folder."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            sys.setswitchinterval(self._interval)
            self._thread = None
        assert self.swaps > 100, self.swaps  # the race really ran

    def real_folder(self) -> Path:
        return next(p for p in (self.alice / "dir", self.alice / ".swap") if not p.is_symlink())


@pytest.fixture
def tenants(tmp_path: Path) -> Iterator[Tenants]:
    tenants = Tenants(tmp_path.resolve())
    tenants.start()
    try:
        yield tenants
    finally:
        tenants.stop()
    assert sorted(os.listdir(tenants.bob)) == ["f.txt"]  # nothing planted in bob's folder
    assert (tenants.bob / "f.txt").read_text() == SECRET


def rounds(minimum: int, done: Callable[[], bool]) -> Iterator[int]:
    """``minimum`` rounds, then more until ``done()`` or ``EXTRA_TIME`` is spent: on a busy
    machine the swapping thread may get little CPU at first."""
    deadline = time.monotonic() + EXTRA_TIME
    count = 0
    while count < minimum or (not done() and time.monotonic() < deadline):
        yield count
        count += 1


def alice_context(alice: Path) -> ToolContext:
    policy = SandboxPolicy(writable=(alice,), readable=(), read_anywhere=False, hidden=())
    return ToolContext(cwd=alice, sandbox=Sandbox(NoBackend(), policy))


def tally(results: list[ToolResult], ok: Callable[[ToolResult], bool]) -> collections.Counter[str]:
    """Outcomes by kind; an escape or an unexpected error fails the test."""
    kinds: collections.Counter[str] = collections.Counter()
    for result in results:
        assert SECRET not in result.content, result
        if not result.is_error:
            assert ok(result), result
            kinds["ok"] += 1
        elif result.content == "Permission denied: dir/f.txt is outside the workspace" or (
            result.content == "Permission denied: dir/x.txt is outside the workspace"
        ):
            kinds["refused"] += 1
        else:  # a folder that kept changing under the walk: a clean error all the same
            assert result.content.endswith(": the path kept changing while it was read"), result
            kinds["changing"] += 1
    return kinds


def test_naive_open_does_escape(tenants: Tenants) -> None:
    """The control: without the resolver, the same race reads bob's file."""
    seen: collections.Counter[str] = collections.Counter()
    for _ in rounds(NAIVE_READS, lambda: seen[SECRET] > 0):
        try:
            seen[(tenants.alice / "dir" / "f.txt").read_text()] += 1
        except OSError:
            seen["error"] += 1
    assert seen[SECRET] > 0, seen


def test_read_file_never_escapes(tenants: Tenants) -> None:
    context = alice_context(tenants.alice)
    tool = ReadFileTool()
    kinds: collections.Counter[str] = collections.Counter()

    async def main() -> None:
        for _ in rounds(READS, lambda: kinds["ok"] > 0 and kinds["refused"] > 0):
            result = await tool.call({"path": "dir/f.txt"}, context)
            kinds.update(tally([result], lambda result: result.content == "alice"))

    trio.run(main)
    assert kinds["ok"] > 0 and kinds["refused"] > 0, kinds  # both states were met


def test_write_file_never_plants_in_bob(tenants: Tenants) -> None:
    alice = tenants.alice
    context = alice_context(alice)
    tool = WriteFileTool()

    async def main() -> list[ToolResult]:
        return [
            await tool.call({"path": "dir/x.txt", "content": f"w{i}"}, context)
            for i in range(WRITES)
        ]

    kinds = tally(trio.run(main), lambda result: result.content.startswith("Wrote "))
    assert kinds["ok"] > 0, kinds
    tenants.stop()  # the fixture checks bob; every write that succeeded went to alice's folder
    assert sorted(os.listdir(tenants.real_folder())) == ["f.txt", "x.txt"]


def test_fs_channel_never_escapes(tenants: Tenants) -> None:
    alice = tenants.alice
    kinds: collections.Counter[str] = collections.Counter()

    def attempt(name: str, call: Callable[[], object], expected: object = None) -> None:
        try:
            result = call()
        except FsError as exc:
            assert SECRET not in exc.message
            assert exc.message == OUTSIDE_MESSAGE or exc.message in (
                "Failed to delete file: No such file or directory",
                f"Failed to {name}: the path kept changing while it was read",
                "Failed to delete file: the path kept changing while it was read",
            ), exc.message
            kinds[f"{name} refused"] += 1
        else:  # any other exception fails the test: it would be an "Internal error"
            assert result == expected, (name, result)
            kinds[f"{name} ok"] += 1

    def both_met() -> bool:
        return kinds["read ok"] > 0 and kinds["read refused"] > 0

    for _ in rounds(FS_ROUNDS, both_met):
        attempt("read", lambda: read_sync(alice, "dir/f.txt", 1024), "alice")
        attempt("write", lambda: write_sync(alice, "dir/y.txt", "y"))
        attempt("delete", lambda: delete_sync(alice, "dir/y.txt"))
    assert both_met(), kinds
    assert kinds["write ok"] > 0 and kinds["delete ok"] > 0, kinds
    tenants.stop()
    assert set(os.listdir(tenants.real_folder())) <= {"f.txt", "y.txt"}  # no temp file left
