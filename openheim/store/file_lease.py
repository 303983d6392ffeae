"""Leases on the file store: an fcntl lock on ``<id>.lock`` beside the conversation's file.

``flock`` locks belong to an open file, so a second process (a second worker on the same
history folder) fails to take it, and so does a second open in this one; the kernel drops the
lock when its holder dies, so a killed process never leaves a session locked. The lock file
names its holder for the error the next one sees, and is removed on release (under the lock;
a process that locked a removed file notices and tries again).

The conversation's ``version`` (the owners' saves so far) is kept in its JSON. Under the lock,
a save checks that the file is still the one this owner last read or wrote (inode, size and
mtime: every save replaces the file); a write by anyone else since, even an unowned one that
kept the number, fences the owner. So an owner's own saves never parse the file again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import Any

import attrs
import trio

from openheim.foundation.errors import HistoryError
from openheim.foundation.fsutil import make_folders
from openheim.foundation.models import Conversation
from openheim.store import codec
from openheim.store.file_io import Stamp, read_stamped, write_document
from openheim.store.lease import LeaseState, Owner, SessionActiveElsewhereError


def _stamp(path: Path) -> Stamp | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def lock(path: Path, conversation_id: str, owner: Owner) -> int:
    """The locked descriptor of ``path`` (created as needed); raises
    ``SessionActiveElsewhereError`` when another open file holds it. Blocking."""
    try:
        make_folders(path.parent, private=True)
    except OSError as exc:
        raise HistoryError(
            f"cannot lock conversation {conversation_id} in {path.parent}: {exc.strerror or exc}",
            public=f"conversation {conversation_id} cannot be opened (the server log says why)",
        ) from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise HistoryError(
                f"cannot lock conversation {conversation_id} with {path}: {exc.strerror or exc}",
                public=f"conversation {conversation_id} cannot be opened (the server log says why)",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or None
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise SessionActiveElsewhereError(conversation_id, None, holder) from None
            raise HistoryError(f"cannot lock {path}: {exc.strerror or exc}") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, owner.id.encode(), 0)
            return fd
        os.close(fd)  # released and removed by its last holder meanwhile: lock the new file


def unlock(path: Path, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(fd)


def version_of(document: Any) -> int:
    version = document.get("version", 0) if isinstance(document, dict) else 0
    return version if isinstance(version, int) else 0


@attrs.define(eq=False)
class FileLease:
    """Ownership of one conversation file; built by ``FileHistoryStore.acquire``."""

    state: LeaseState
    path: Path
    lock_path: Path
    fd: int | None
    #: The file as this owner last read or wrote it; None before either.
    seen: Stamp | None = None

    async def load(self) -> Conversation:
        document, self.seen = await trio.to_thread.run_sync(
            read_stamped, self.path, self.state.conversation_id
        )
        self.state.version = version_of(document)
        try:
            return codec.from_document(document)
        except Exception as exc:  # cattrs reports shape errors as exception groups
            raise HistoryError(
                f"conversation file {self.path} is not valid: {exc}",
                public=f"conversation {self.state.conversation_id} is stored but not valid",
            ) from None

    async def save(self, conversation: Conversation) -> None:
        document = codec.to_document(conversation)
        state = self.state
        if state.lost or state.released:
            raise state.fence(state.reason or "its lock was released")
        written = await trio.to_thread.run_sync(self.write_locked, document)
        self.saved(written)

    def write_locked(self, document: dict[str, Any]) -> Stamp | None:
        """Write the next version if the file is still the one this owner last saw (or still
        absent); None when someone else wrote it since. Blocking, under the lock."""
        current = _stamp(self.path)
        if current is not None and current != self.seen:
            return None
        document["version"] = self.state.version + 1
        write_document(self.path, document)
        return _stamp(self.path)

    def saved(self, written: Stamp | None) -> None:
        """Note what ``write_locked`` did, in the owner's task (a fence calls back)."""
        if written is None:
            raise self.state.fence("another process saved it since")
        self.state.version += 1
        self.seen = written

    async def release(self) -> None:
        self.state.released = True
        fd, self.fd = self.fd, None
        if fd is not None:
            await trio.to_thread.run_sync(unlock, self.lock_path, fd)
