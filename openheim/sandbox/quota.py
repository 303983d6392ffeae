"""A tenant's workspace quota: how many bytes its files may take.

Writes openheim makes itself (``write_file``, the fs channel) reserve their size first and fail
with ``EDQUOT`` past the limit, so nothing is written at all. Commands write by themselves, so
after each one the workspace is measured again and the model is told when it is over; while it
is over, every reserving write fails until files are deleted.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import attrs


@attrs.define(eq=False)
class WorkspaceQuota:
    root: Path
    limit: int
    _used: int | None = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def used(self) -> int | None:
        """Bytes in use as last measured or reserved; None before the first measure."""
        return self._used

    def measure(self) -> int:
        """Walk the workspace (blocking: a worker thread), never following links."""
        total = 0
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    continue  # gone meanwhile
        with self._lock:
            self._used = total
        return total

    def over(self) -> bool:
        return self._used is not None and self._used > self.limit

    def reserve(self, dir_fd: int, name: str, size: int) -> None:
        """Account for writing ``size`` bytes over the entry ``name`` of ``dir_fd``; raises
        ``OSError(EDQUOT)`` when that would pass the limit (blocking: a worker thread)."""
        if self._used is None:
            self.measure()
        try:
            old = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_size
        except FileNotFoundError:
            old = 0
        with self._lock:
            assert self._used is not None
            after = self._used - old + size
            if after > self.limit:
                raise OSError(
                    errno.EDQUOT,
                    f"the workspace quota of {self.limit} bytes would be passed "
                    f"({self._used} in use, {size} more asked); delete files first",
                )
            self._used = after
