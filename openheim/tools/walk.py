"""Walking a folder tree inside a sandbox policy, for ``list_dir``, ``glob`` and ``grep``.

The root is opened through the race-free resolver; below it every folder is entered by name
from the held root fd through real folders only (``fileops.open_beneath``), so a folder swapped
for a symlink mid-walk cannot lead out. Symlinks are listed, never entered nor looked through.
``.git`` is skipped, hidden paths (the server's own files) are never shown, and ``.gitignore``
rules apply as git applies them (``tools.ignore``), the ones above the root too when the root
lies in a git checkout. Breadth first with sorted names, so a walk cut by its caps still shows
the top levels. Blocking: run it in a worker thread.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Iterator

import attrs

from openheim.sandbox.fileops import open_beneath, open_final, retrying
from openheim.sandbox.paths import Confinement, PathRefused, Resolved, resolve
from openheim.tools.ignore import IGNORE_FILE_LIMIT, IgnoreRules

#: How a file in the tree is opened: never through a symlink, never hanging on a FIFO.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
#: Folders above the root searched for .gitignore files and the checkout's ``.git``.
_MAX_ANCESTORS = 64


@attrs.frozen
class Entry:
    """One thing in the tree; ``rel`` is its path below the root, ``/``-separated."""

    rel: str
    name: str
    is_dir: bool
    is_link: bool
    size: int
    depth: int


@attrs.frozen
class Target:
    """An opened walk root: a folder fd, or a single file's (then ``is_dir`` is False)."""

    fd: int
    path: str  # the logical absolute path, for hidden-path checks
    is_dir: bool

    def close(self) -> None:
        os.close(self.fd)


def open_target(confinement: Confinement, path: str) -> Target:
    """Open ``path`` (absolute) inside ``confinement``; raises ``PathRefused``,
    ``InvalidPath`` or ``OSError``. Close the result."""

    def opened(resolved: Resolved) -> Target:
        fd = open_final(resolved, os.O_RDONLY | os.O_NONBLOCK)
        return Target(fd, resolved.path, stat.S_ISDIR(os.fstat(fd).st_mode))

    return retrying(confinement, path, opened)


def _read_small(dir_fd: int, name: str) -> str | None:
    """A small text file in ``dir_fd`` (a .gitignore), never through a symlink; None if none."""
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(IGNORE_FILE_LIMIT).decode("utf-8", errors="replace")


def _has_git(dir_fd: int) -> bool:
    try:
        os.stat(".git", dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return False
    return True


def ancestor_rules(confinement: Confinement, root: Target) -> IgnoreRules:
    """The .gitignore rules of the folders above ``root`` up to its git checkout's top; none
    when the root is the top or lies in no checkout the policy lets us see."""
    if _has_git(root.fd):
        return IgnoreRules()
    found: list[tuple[str, str]] = []
    below = os.path.basename(root.path)
    folder = os.path.dirname(root.path)
    for _ in range(_MAX_ANCESTORS):
        try:
            with resolve(confinement, folder) as resolved:
                fd = open_final(resolved, os.O_RDONLY | os.O_DIRECTORY)
        except (PathRefused, OSError):
            return IgnoreRules()
        try:
            text = _read_small(fd, ".gitignore")
            if text:
                found.append((below, text))
            if _has_git(fd):
                return IgnoreRules.from_ancestors(reversed(found))
        finally:
            os.close(fd)
        if folder == "/":
            break
        below = f"{os.path.basename(folder)}/{below}"
        folder = os.path.dirname(folder)
    return IgnoreRules()


@attrs.define
class Walk:
    """One walk below an opened folder; iterate ``entries()``. ``cut`` tells afterwards
    whether entries were left out for depth or for the visit budget."""

    confinement: Confinement
    root: Target
    max_depth: int
    max_visits: int = 100_000
    rules: IgnoreRules = attrs.field(factory=IgnoreRules)
    cut: bool = False
    visits: int = 0

    def entries(self) -> Iterator[tuple[int, Entry]]:
        """Each entry with the fd of its folder, open while the entry is being looked at (so
        the caller can ``openat`` it); the caller may stop early."""
        queue: deque[tuple[tuple[str, ...], int, IgnoreRules]] = deque([((), 1, self.rules)])
        while queue:
            names, depth, rules = queue.popleft()
            try:
                fd = open_beneath(self.root.fd, names, os.O_RDONLY)
            except OSError:
                continue  # gone or replaced meanwhile: left out
            try:
                base = "/".join(names)
                rules = rules.below(base, _read_small(fd, ".gitignore"))
                for entry in self._scan(fd, names, depth, rules):
                    yield fd, entry
                    if entry.is_dir and not entry.is_link:
                        if depth < self.max_depth:
                            queue.append(((*names, entry.name), depth + 1, rules))
                        else:
                            self.cut = True
            finally:
                os.close(fd)

    def _scan(
        self, fd: int, names: tuple[str, ...], depth: int, rules: IgnoreRules
    ) -> Iterator[Entry]:
        try:
            with os.scandir(fd) as items:
                found = sorted(items, key=lambda item: item.name)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM) and names:
                return  # an unreadable subfolder is left out
            raise
        for item in found:
            self.visits += 1
            if self.visits > self.max_visits:
                self.cut = True
                return
            if item.name == ".git":
                continue
            rel = "/".join((*names, item.name))
            if self.confinement.is_hidden(f"{self.root.path.rstrip('/')}/{rel}"):
                continue
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            # A symlink is shown as a link: where it leads is not looked at (it may be
            # outside the policy, and even "is it a folder" would tell about it).
            is_dir = stat.S_ISDIR(info.st_mode)
            if rules.ignored(rel, is_dir):
                continue
            yield Entry(rel, item.name, is_dir, stat.S_ISLNK(info.st_mode), info.st_size, depth)
