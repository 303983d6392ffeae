"""Confine every fs-channel path to the tenant's workspace root, and do the file work there.

openheim 0.1.x let the client pick the root and checked only the nearest existing ancestor of a
missing target, so ``..`` walked out through paths that did not exist yet. Here the root is fixed
by the server and every requested path is walked inside it by the sandbox's race-free resolver
(``openheim.sandbox.paths``): one name at a time from a held fd of the root, symlinks followed
only while they stay inside, the operation itself an ``*at`` call on the held folder. A folder
swapped for a symlink between a check and the operation cannot lead out, because there is no
such gap. The checks that need no file system (``check_request``, ``join_request``,
``is_within``) are pure; everything else does I/O, so run it in a worker thread: the
``*_sync`` operations of ``fs`` requests, at the end, raise ``FsError`` with the message for
the client.

What is refused, always with openheim's message ``Path not within workspace or does not exist``:
``..`` that climbs out, absolute paths elsewhere, symlinks at any component (the last one too,
dangling ones too) whose target is outside, NUL bytes, and ``..`` pieces between backslashes
(``..\\x``: a literal name on POSIX, but only ever sent to escape). Nothing is decoded or
expanded: ``%2e%2e`` and ``~`` are ordinary names inside the root.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from openheim.foundation.errors import ClientError
from openheim.foundation.fsutil import atomic_write_at
from openheim.sandbox import fileops, paths
from openheim.sandbox.fileops import retrying
from openheim.sandbox.paths import Confinement, InvalidPath, Missing, PathRefused, Resolved, check
from openheim.sandbox.quota import WorkspaceQuota

T = TypeVar("T")

OUTSIDE_MESSAGE = "Path not within workspace or does not exist"


class FsError(ClientError):
    """A refused or failed fs request; ``message`` goes to the client as is."""


def check_request(requested: str) -> None:
    """Refuse what no legitimate client sends, before touching the file system."""
    if "\0" in requested:
        raise FsError(OUTSIDE_MESSAGE)
    try:
        os.fsencode(requested)
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): no file has that name
        raise FsError(OUTSIDE_MESSAGE) from None
    for part in requested.split("/"):
        if "\\" in part and ".." in part.split("\\"):
            raise FsError(OUTSIDE_MESSAGE)


def join_request(root: str, requested: str) -> str:
    """The requested path made absolute: relative to ``root``; empty means the root itself."""
    if not requested:
        return root
    if os.path.isabs(requested):
        return requested
    return os.path.join(root, requested)


def is_within(root: str, path: str) -> bool:
    """Whether the resolved ``path`` is ``root`` or under it (both absolute and resolved)."""
    if path == root:
        return True
    prefix = root if root.endswith(os.sep) else root + os.sep
    return path.startswith(prefix)


def real_root(root: Path | str) -> str:
    """The root with its own symlinks resolved, so comparisons are like with like."""
    return os.path.realpath(root)


def confinement(root: Path | str) -> Confinement:
    """The tenant's root as the one place its fs requests may reach (read and write)."""
    return Confinement((real_root(root),))


def _absolute(confinement: Confinement, requested: str) -> str:
    check_request(requested)
    return join_request(confinement.roots[0], requested)


def run_at(
    root: Path | str,
    requested: str,
    op: Callable[[Resolved], T],
    *,
    missing: Missing = Missing.FAIL,
    directory: bool = False,
) -> T:
    """``op`` on the resolved ``requested`` path (symlinks inside the root followed).

    ``directory``: every named component is a folder, the last one too (``mkdir``). Raises
    ``FsError(OUTSIDE_MESSAGE)`` for a refused path and ``OSError`` for a failed one.
    """
    where = confinement(root)
    path = _absolute(where, requested)
    if directory:
        path = os.path.join(path, ".")
    try:
        return retrying(where, path, op, missing=missing)
    except (PathRefused, InvalidPath):
        raise FsError(OUTSIDE_MESSAGE) from None


@contextlib.contextmanager
def open_entry(root: Path | str, requested: str) -> Iterator[Resolved]:
    """The directory entry ``requested`` names, without following a final symlink.

    ``delete`` and ``rename`` act on a link itself, never on what it points to; the target is
    still checked, so a link pointing out of the root is refused as ``run_at`` refuses it (a
    link that loops leads nowhere and may go). Raises as ``run_at`` does.
    """
    where = confinement(root)
    path = _absolute(where, requested)
    try:
        with contextlib.suppress(OSError):  # a loop, a missing folder: the operation says so
            check(where, path)
        resolved = paths.resolve(where, path, follow=False)
    except (PathRefused, InvalidPath):
        raise FsError(OUTSIDE_MESSAGE) from None
    with resolved:
        yield resolved


def resolve(root: Path | str, requested: str) -> Path:
    """The real path ``requested`` names inside ``root``, following every symlink; missing
    components are fine (``write`` and ``mkdir`` create them). Only a check: the operations
    use ``run_at``. Raises ``FsError`` when refused and ``OSError`` (a loop, a file used as a
    folder) when the path cannot be resolved."""
    where = confinement(root)
    try:
        return Path(check(where, _absolute(where, requested)))
    except (PathRefused, InvalidPath):
        raise FsError(OUTSIDE_MESSAGE) from None


def resolve_entry(root: Path | str, requested: str) -> Path:
    """The directory entry ``requested`` names, without following a final symlink (see
    ``open_entry``)."""
    with open_entry(root, requested) as resolved:
        return Path(resolved.path)


# --- the operations: blocking, run them in a worker thread -------------------------------------
# Each resolves its path as above and acts through the held folder fd (``fileops``).


def fail_reason(exc: OSError) -> str:
    """What went wrong, without the server path an ``OSError``'s ``str`` would add."""
    return exc.strerror or str(exc)


def _entry(item: fileops.Listed) -> dict[str, Any]:
    """A FileEntry; a link inside the root describes what it leads to."""
    is_dir = stat.S_ISDIR(item.info.st_mode)
    entry: dict[str, Any] = {"path": item.path, "name": item.name, "is_dir": is_dir}
    if not is_dir:
        entry["size"] = item.info.st_size
    entry["modified"] = int(item.info.st_mtime)
    return entry


def _list_at(
    where: Confinement, target: Resolved, recursive: bool, max_depth: int, max_entries: int
) -> tuple[list[fileops.Listed], bool]:
    top = fileops.open_final(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return fileops.list_tree(
            where,
            top,
            target.path,
            recursive=recursive,
            max_depth=max_depth,
            max_entries=max_entries,
        )
    except OSError as exc:  # the folder itself could not be read
        raise FsError(f"Failed to read dir: {fail_reason(exc)}") from exc
    finally:
        os.close(top)


def list_sync(
    root: Path, requested: str, recursive: bool, max_depth: int, max_entries: int
) -> dict[str, Any]:
    """Breadth first, so a truncated listing still shows the top levels; sorted in tree order."""
    where = confinement(root)
    try:
        listed, truncated = run_at(
            root,
            requested,
            lambda target: _list_at(where, target, recursive, max_depth, max_entries),
        )
    except OSError:
        raise FsError(f"Invalid directory: {requested}") from None
    entries = [_entry(item) for item in listed]
    entries.sort(key=lambda e: e["path"].split(os.sep))
    response: dict[str, Any] = {"type": "file_list", "path": requested, "entries": entries}
    if truncated:
        response["truncated"] = True
    return response


def _read_at(target: Resolved, max_bytes: int) -> bytes:
    # O_NONBLOCK: opening a FIFO must not hang the thread; it is refused just below.
    fd = fileops.open_final(target, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise FsError("Failed to read: Is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise FsError("Failed to read: not a regular file")
        size = info.st_size
        data = f.read(max_bytes + 1) if size <= max_bytes else b""
        if size > max_bytes or len(data) > max_bytes:  # it may grow while we read
            size = max(size, len(data))
            raise FsError(f"Failed to read: file too large ({size} bytes, limit {max_bytes})")
    return data


def read_sync(root: Path, requested: str, max_bytes: int) -> str:
    try:
        data = run_at(root, requested, lambda target: _read_at(target, max_bytes))
    except OSError as exc:
        raise FsError(f"Failed to read: {fail_reason(exc)}") from exc
    if b"\0" in data:
        raise FsError("Failed to read: binary file, not UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FsError("Failed to read: binary file, not UTF-8 text") from None


def write_sync(
    root: Path, requested: str, content: str, quota: WorkspaceQuota | None = None
) -> None:
    def write(target: Resolved) -> None:
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800"
            raise FsError("Failed to write: content is not valid Unicode") from None
        if quota is not None:
            quota.reserve(target.dir_fd, target.name, len(data))
        atomic_write_at(target.dir_fd, target.name, data, shown=target.path)

    try:
        run_at(root, requested, write, missing=Missing.CREATE)
    except OSError as exc:
        raise FsError(f"Failed to write: {fail_reason(exc)}") from exc


def mkdir_sync(root: Path, requested: str) -> None:
    try:
        run_at(root, requested, fileops.make_dir, missing=Missing.CREATE, directory=True)
    except OSError as exc:
        raise FsError(f"Failed to mkdir: {fail_reason(exc)}") from exc


def delete_sync(root: Path, requested: str) -> None:
    """A file or a link is unlinked; a folder goes with its contents, fd by fd (never
    following a link out)."""
    try:
        with open_entry(root, requested) as entry:
            if entry.is_root:
                raise FsError("Cannot delete the workspace root")
            if not stat.S_ISDIR(fileops.lstat(entry).st_mode):
                fileops.remove(entry)
                return
            try:
                fileops.remove_tree(entry)
            except OSError as exc:
                raise FsError(f"Failed to delete dir: {fail_reason(exc)}") from exc
    except OSError as exc:
        raise FsError(f"Failed to delete file: {fail_reason(exc)}") from exc


def rename_sync(root: Path, source: str, destination: str) -> None:
    """Moves the entry itself (a link stays a link); an existing destination is refused."""
    try:
        with open_entry(root, source) as src, open_entry(root, destination) as dst:
            if src.is_root or dst.is_root:
                raise FsError("Cannot rename the workspace root")
            src_info = fileops.lstat(src)
            try:
                dst_info: os.stat_result | None = fileops.lstat(dst)
            except FileNotFoundError:
                dst_info = None
            # Same entry under another spelling (a case-only rename on a case-insensitive disk).
            if dst_info is not None and not os.path.samestat(src_info, dst_info):
                raise FsError("Failed to rename: destination already exists")
            fileops.rename(src, dst)
    except OSError as exc:
        raise FsError(f"Failed to rename: {fail_reason(exc)}") from exc


def _watchable(target: Resolved) -> str:
    os.close(fileops.open_final(target, os.O_PATH | os.O_DIRECTORY))
    return target.path


def watch_target_sync(root: Path, requested: str) -> tuple[str, str]:
    """The real root and the real folder to watch, which must be a directory inside it.
    watchfiles takes a path, so this is a check: the watcher drops changes seen through links
    that lead out."""
    try:
        folder = run_at(root, requested, _watchable)
    except OSError:
        raise FsError(f"Invalid directory: {requested}") from None
    return real_root(root), folder
