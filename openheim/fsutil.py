"""Durable file replacement shared by the history store, the tools and ``openheim init``."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path


def _open_temp(directory: Path, name: str) -> tuple[int, Path]:
    """A new, unique file beside the target. Mode 0o666 lets the kernel apply the umask, as for
    any new file (``mkstemp`` would force 0o600, and reading the umask means changing it)."""
    while True:
        temp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
        except FileExistsError:
            continue


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable too; some filesystems cannot, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: temp file, fsync, rename.

    Writes through a symlink to its target, keeps an existing file's permission bits and never
    leaves the temp file behind. Raises ``OSError``.
    """
    target = Path(os.path.realpath(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a parent exists but is a file
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path)) from None
    try:
        info: os.stat_result | None = target.stat()
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    # Renaming over a file only needs a writable directory; honour a read-only file anyway.
    if info is not None and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    mode = stat.S_IMODE(info.st_mode) if info is not None else None
    fd, temp = _open_temp(target.parent, target.name)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(target.parent)
