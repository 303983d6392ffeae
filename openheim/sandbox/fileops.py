"""Operations on a resolved path (``paths.Resolved``): each one an ``*at`` call on the held
folder fd with ``O_NOFOLLOW``, so nothing is looked up by path again after the resolver's walk.
A symlink swapped in at the final name in between makes the call fail with ``ELOOP`` instead of
following it; ``retrying`` then walks again.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import deque
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs

from openheim.sandbox.paths import (
    Confinement,
    Missing,
    PathRefused,
    Resolved,
    readlink_at,
    resolve,
)

T = TypeVar("T")

#: Walks tried when the operation met a symlink swapped in after resolution.
_TRIES = 4

_FOLDER = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def retrying(
    confinement: Confinement,
    path: str,
    op: Callable[[Resolved], T],
    *,
    follow: bool = True,
    missing: Missing = Missing.FAIL,
) -> T:
    """``op`` on the resolved ``path``, resolved again when ``op`` fails with ``ELOOP``: its
    ``O_NOFOLLOW`` met a symlink swapped in at the final name after resolution."""
    for attempt in range(_TRIES):
        with resolve(confinement, path, follow=follow, missing=missing) as resolved:
            try:
                return op(resolved)
            except OSError as exc:
                if exc.errno != errno.ELOOP or attempt == _TRIES - 1:
                    raise
    raise AssertionError("unreachable")  # pragma: no cover


def open_final(resolved: Resolved, flags: int) -> int:
    """Open the final name with ``O_NOFOLLOW``; a symlink there is ``ELOOP`` whatever the
    flags (with ``O_DIRECTORY`` the kernel would say ``ENOTDIR``)."""
    try:
        return os.open(resolved.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=resolved.dir_fd)
    except NotADirectoryError:
        if readlink_at(resolved.name, resolved.dir_fd) is not None:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), resolved.path) from None
        raise


def lstat(resolved: Resolved) -> os.stat_result:
    """The final entry itself (a symlink is described, not followed)."""
    return os.stat(resolved.name, dir_fd=resolved.dir_fd, follow_symlinks=False)


def open_beneath(dir_fd: int, names: Sequence[str], flags: int = os.O_PATH) -> int:
    """An fd of the folder ``names`` leads to below ``dir_fd`` (the last step opened with
    ``flags``), through real folders only: a symlink on the way is ``ENOTDIR``. A listing
    descends this way."""
    if not names:
        return os.dup(dir_fd)
    fd = dir_fd
    try:
        for index, name in enumerate(names):
            step = flags if index == len(names) - 1 else os.O_PATH
            child = os.open(name, step | _FOLDER, dir_fd=fd)
            if fd != dir_fd:
                os.close(fd)
            fd = child
    except BaseException:
        if fd != dir_fd:
            os.close(fd)
        raise
    return fd


def make_dir(resolved: Resolved) -> None:
    """The last step of ``mkdir -p``: create the final name; an existing folder is fine."""
    try:
        os.mkdir(resolved.name, 0o777, dir_fd=resolved.dir_fd)
    except FileExistsError:
        if not stat.S_ISDIR(lstat(resolved).st_mode):
            raise


def remove_tree(resolved: Resolved) -> None:
    """Remove the folder at the final name with all it holds, fd by fd: ``rmtree`` with
    ``dir_fd`` opens each level relative to the one above and checks it is what it
    ``lstat``-ed, so a link swapped in is never followed out."""
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - Linux always has it
        raise OSError(errno.ENOTSUP, "no symlink-safe recursive delete on this platform")
    shutil.rmtree(resolved.name, dir_fd=resolved.dir_fd)


def remove(resolved: Resolved) -> None:
    """Unlink the final entry (a symlink itself, never its target)."""
    os.unlink(resolved.name, dir_fd=resolved.dir_fd)


def rename(source: Resolved, destination: Resolved) -> None:
    """Move the entry itself (a link stays a link) from one held folder to another."""
    os.rename(
        source.name, destination.name, src_dir_fd=source.dir_fd, dst_dir_fd=destination.dir_fd
    )


@attrs.frozen
class Listed:
    """One entry of a listing. ``info`` describes the entry, or for a symlink what it leads to
    when that is inside the roots and exists."""

    path: str
    name: str
    info: os.stat_result


def _link_info(confinement: Confinement, path: str) -> os.stat_result | None:
    try:
        with resolve(confinement, path) as target:
            return lstat(target)
    except (OSError, PathRefused):
        return None


def list_tree(
    confinement: Confinement,
    dir_fd: int,
    path: str,
    *,
    recursive: bool,
    max_depth: int,
    max_entries: int,
) -> tuple[list[Listed], bool]:
    """The entries in the folder ``dir_fd`` (named ``path``), and below it if ``recursive``,
    breadth first so a cut listing still shows the top levels; and whether it was cut at
    ``max_entries`` or ``max_depth``. Descends by name through real folders only (a linked
    folder is listed, not entered). Raises ``OSError`` if the folder itself cannot be read; a
    subfolder that cannot is left out, and an entry that vanishes meanwhile too."""
    listed: list[Listed] = []
    full = too_deep = False
    queue: deque[tuple[tuple[str, ...], int]] = deque([((), 1)])
    while queue and not full:
        names, depth = queue.popleft()
        folder = os.path.join(path, *names)
        try:
            fd = open_beneath(dir_fd, names, os.O_RDONLY)
            try:
                with os.scandir(fd) as items:
                    for item in items:
                        if len(listed) >= max_entries:
                            full = True
                            break
                        try:
                            info = item.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        child = os.path.join(folder, item.name)
                        if stat.S_ISLNK(info.st_mode):
                            shown = _link_info(confinement, child) or info
                        else:
                            shown = info
                        listed.append(Listed(child, item.name, shown))
                        if stat.S_ISDIR(info.st_mode) and recursive:
                            if depth < max_depth:
                                queue.append(((*names, item.name), depth + 1))
                            else:
                                too_deep = True
            finally:
                os.close(fd)
        except OSError:
            if depth == 1:
                raise
    return listed, full or too_deep
