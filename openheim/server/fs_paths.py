"""Confine every fs-channel path to the tenant's workspace root.

openheim 0.1.x let the client pick the root and checked only the nearest existing ancestor of a
missing target, so ``..`` walked out through paths that did not exist yet. Here the root is fixed
by the server and every requested path is resolved the way the kernel would resolve it
(``os.path.realpath``: symlinks first, then ``..``), and the result must be the root or lie under
it. The checks that need no file system (``check_request``, ``join_request``, ``is_within``) are
pure; ``resolve`` and ``resolve_entry`` add the one unavoidable I/O step, ``realpath``, so run them
in a worker thread.

What is refused, always with openheim's message ``Path not within workspace or does not exist``:
``..`` that climbs out, absolute paths elsewhere, symlinks at any component (the last one too,
dangling ones too) whose target is outside, NUL bytes, and ``..`` pieces between backslashes
(``..\\x``: a literal name on POSIX, but only ever sent to escape). Nothing is decoded or
expanded: ``%2e%2e`` and ``~`` are ordinary names inside the root.

A check and the operation that follows are two steps: a symlink swapped in between by someone
who can already write inside the root is not caught (that would need ``openat2``
``RESOLVE_BENEATH``). The agent and the fs channel are the only writers we expect.
"""

from __future__ import annotations

import os
from pathlib import Path

OUTSIDE_MESSAGE = "Path not within workspace or does not exist"


class FsError(Exception):
    """A refused or failed fs request; ``message`` goes to the client as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


def real_root(root: Path) -> str:
    """The root with its own symlinks resolved, so comparisons are like with like."""
    return os.path.realpath(root)


def resolve(root: Path | str, requested: str) -> Path:
    """The real path ``requested`` names, following every symlink; it must be inside ``root``.

    Missing components are fine (``write`` and ``mkdir`` create them): ``realpath`` resolves
    the existing prefix and applies the rest, ``..`` included, to it.
    """
    check_request(requested)
    base = real_root(Path(root))
    target = os.path.realpath(join_request(base, requested))
    if not is_within(base, target):
        raise FsError(OUTSIDE_MESSAGE)
    return Path(target)


def resolve_entry(root: Path | str, requested: str) -> Path:
    """The directory entry ``requested`` names, without following a final symlink.

    ``delete`` and ``rename`` act on a link itself, never on what it points to; the target is
    still checked, so a link pointing out of the root is refused as ``resolve`` refuses it.
    """
    target = resolve(root, requested)
    base = real_root(Path(root))
    joined = join_request(base, requested).rstrip("/")
    head, name = os.path.split(joined)
    if name in ("", ".", ".."):
        return target
    parent = os.path.realpath(head or "/")
    if not is_within(base, parent):
        if str(target) == base:  # the root named by its own (absolute) path
            return target
        raise FsError(OUTSIDE_MESSAGE)
    return Path(parent) / name
