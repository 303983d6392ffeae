"""Durable file replacement shared by the history store, the tools and ``openheim init``."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

#: Modes of what openheim keeps for itself (histories, logs, tenants' folders): the umask can
#: only narrow them, and other local users have no business reading conversations.
PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

#: How ``atomic_write`` holds the folder: search permission is enough, as for a path.
_FOLDER_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC


def make_folders(path: Path, *, private: bool = False) -> None:
    """``mkdir -p``; with ``private`` each folder it creates is 0700 (``Path.mkdir`` gives the
    mode to the last folder only). Folders that exist keep their mode."""
    if not private:
        path.mkdir(parents=True, exist_ok=True)
        return
    missing = []
    folder = path
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_FOLDER_MODE)


def _open_temp(dir_fd: int, name: str, mode: int) -> tuple[int, str]:
    """A new, unique file beside the target. Mode 0o666 lets the kernel apply the umask, as for
    any new file (``mkstemp`` would force 0o600, and reading the umask means changing it)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        temp = f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temp, flags, mode, dir_fd=dir_fd), temp
        except FileExistsError:
            continue


def _fsync_dir(dir_fd: int) -> None:
    """Make the rename durable too; some filesystems cannot, which is fine. ``dir_fd`` may be
    an ``O_PATH`` fd, which cannot be synced itself."""
    with contextlib.suppress(OSError):
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_at(
    dir_fd: int, name: str, data: bytes, *, shown: str | None = None, private: bool = False
) -> None:
    """Replace the file ``name`` in the open folder ``dir_fd`` with ``data``: temp file, fsync,
    rename, all relative to ``dir_fd``, so nothing here follows a path again.

    ``name`` must not be a symlink (resolve it first; one swapped in meanwhile is ``ELOOP``).
    Keeps an existing file's permission bits and never leaves the temp file behind. ``shown``
    is the path named in the errors raised here; ``private`` makes a new file 0600. Raises
    ``OSError``.
    """
    shown = shown or name
    try:
        info: os.stat_result | None = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", shown)
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), shown)
    # Renaming over a file only needs a writable directory; honour a read-only file anyway.
    if info is not None and not os.access(name, os.W_OK, dir_fd=dir_fd, follow_symlinks=False):
        raise PermissionError(errno.EACCES, "Permission denied", shown)
    mode = stat.S_IMODE(info.st_mode) if info is not None else None
    fd, temp = _open_temp(dir_fd, name, PRIVATE_FILE_MODE if private else 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise
    _fsync_dir(dir_fd)


def atomic_write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` with ``data`` all at once: temp file, fsync, rename.

    Writes through a symlink to its target, creates missing parent folders, keeps an existing
    file's permission bits and never leaves the temp file behind. Raises ``OSError``. For a
    path someone else may change meanwhile, resolve it (``openheim.sandbox.paths``) and use
    ``atomic_write_at``. ``private``: new folders 0700, a new file 0600.
    """
    target = Path(os.path.realpath(path))
    try:
        make_folders(target.parent, private=private)
    except FileExistsError:  # a parent exists but is a file
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path)) from None
    dir_fd = os.open(target.parent, _FOLDER_FLAGS)
    try:
        atomic_write_at(dir_fd, target.name, data, shown=str(path), private=private)
    finally:
        os.close(dir_fd)
