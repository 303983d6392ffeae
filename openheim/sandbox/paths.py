"""Race-free paths inside a policy's roots: the resolver of the file tools and the fs channel.

Checking a path and then opening it are two steps, and whoever can write in the workspace can
swap a folder for a symlink between them (to another tenant's folder, say). So the kernel is
never handed a whole path. It is walked one name at a time from a held fd of the root it lies
in, each step an ``openat`` of one name with ``O_NOFOLLOW`` relative to the folder before; a
folder swapped mid-walk is either the one we already hold or a symlink we see as such. A symlink
is read (``readlinkat``) and its target walked the same way, so it is followed only while it
stays inside the roots. ``..`` pops our own stack of folder fds: ``openat(fd, "..")`` would
leave through a folder moved out of the root. Climbing out of a root, into a hidden path or
into anything that is not a root refuses the whole path (``PathRefused``).

Above the roots nothing is opened: the path goes by name down the roots' own ancestors (real
paths, not the tenant's to change); a symlink there (a cwd given through a link) is followed,
anything else is outside. So a root reached only through some other outside folder is refused.

The result is an open folder fd and a final name for the ``*at`` call that acts on it, with
``O_NOFOLLOW`` again: a link swapped in after resolution fails with ``ELOOP``, and
``fileops.retrying`` then resolves once more.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import stat
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import attrs

from openheim.foundation.errors import PathError
from openheim.sandbox.policy import SandboxPolicy

#: Symlinks one resolution follows before giving up with ``ELOOP``, as the kernel does.
MAX_LINKS = 40
#: Folder fds one walk holds at most; older ones are closed and reopened on ``..``.
_MAX_HELD = 32
#: Walks tried when something on the way changed under us.
_TRIES = 4

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ROOT_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class Access(enum.Enum):
    """Reads may reach the readable roots too (or everything); writes only the writable ones."""

    READ = "read"
    WRITE = "write"


class Missing(enum.Enum):
    """What a walk does with a folder on the way that does not exist."""

    FAIL = "fail"  # FileNotFoundError (reads); a missing name undone by ``..`` is fine
    ALLOW = "allow"  # go on by name and create nothing: a check before someone else acts
    CREATE = "create"  # create it, as ``mkdir -p`` would: writes


class PathRefused(PathError):
    """The path leads out of the allowed roots or into a hidden path."""

    def __init__(self, path: str) -> None:
        super().__init__("the path leads outside the allowed roots")
        self.path = path


class InvalidPath(PathError, ValueError):
    """No file can have this name: a NUL byte, or a lone surrogate (a JSON ``"\\ud800"``)."""


class _Changed(Exception):
    """Something on the way changed while we walked; walk again."""


def within(path: str, base: str) -> bool:
    """Whether ``path`` is ``base`` or under it (both absolute, normalized)."""
    return path == base or path.startswith(base if base.endswith("/") else base + "/")


def _real(paths: Iterable[Path | str]) -> tuple[str, ...]:
    out: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in out:
            out.append(real)
    return tuple(out)


@attrs.frozen
class Confinement:
    """Where a resolution may lead: the real absolute ``roots``, minus ``hidden`` paths."""

    roots: tuple[str, ...]
    hidden: tuple[str, ...] = ()

    @classmethod
    def of(cls, policy: SandboxPolicy, access: Access) -> Confinement:
        """What ``policy`` allows for ``access``; blocking (``realpath`` of the roots)."""
        if access is Access.WRITE:
            roots: tuple[Path, ...] = policy.writable
        elif policy.read_anywhere:
            roots = (Path("/"),)
        else:
            roots = (*policy.writable, *policy.readable)
        return cls(_real(roots), _real(policy.hidden))

    def is_root(self, path: str) -> bool:
        return path in self.roots

    def leads_to_root(self, path: str) -> bool:
        """Whether ``path`` is an ancestor of a root (or a root)."""
        return any(within(root, path) for root in self.roots)

    def is_hidden(self, path: str) -> bool:
        return any(within(path, hidden) for hidden in self.hidden)


@attrs.define
class Resolved:
    """A resolved path: the open folder ``dir_fd`` and the ``name`` in it; close it after use.

    ``name`` is ``"."`` when the path is a root itself. ``path`` is the logical absolute path
    (symlinks resolved), for messages. ``missing`` lists the folders that do not exist between
    ``dir_fd`` and ``name`` (``Missing.ALLOW`` only).
    """

    dir_fd: int
    name: str
    path: str
    missing: tuple[str, ...] = ()

    @property
    def is_root(self) -> bool:
        return self.name == "."

    def close(self) -> None:
        if self.dir_fd >= 0:
            fd, self.dir_fd = self.dir_fd, -1
            os.close(fd)

    def __enter__(self) -> Resolved:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def resolve(
    confinement: Confinement,
    path: str,
    *,
    follow: bool = True,
    missing: Missing = Missing.FAIL,
) -> Resolved:
    """Walk the absolute ``path`` inside ``confinement``; see the module doc.

    ``follow``: a symlink as the final name is followed (reads, writes) or is itself the result
    (delete, rename). Raises ``PathRefused``, ``InvalidPath``, or ``OSError`` as the kernel
    would (``ELOOP`` after ``MAX_LINKS`` links, ``ENOTDIR``, ``ENOENT`` for a missing folder
    with ``Missing.FAIL``). Blocking.
    """
    if "\0" in path:
        raise InvalidPath("a path cannot contain a NUL byte")
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise InvalidPath("a path must be valid Unicode") from None
    if not os.path.isabs(path):
        raise ValueError(f"not an absolute path: {path!r}")
    for _ in range(_TRIES):
        walk = _Walk(confinement, path)
        try:
            return walk.run(follow, missing)
        except _Changed:
            continue
        finally:
            walk.close()
    raise OSError(errno.EAGAIN, "the path kept changing while it was read", path)


def check(confinement: Confinement, path: str, *, follow: bool = True) -> str:
    """The logical path ``path`` leads to, creating nothing; raises as ``resolve`` does."""
    with resolve(confinement, path, follow=follow, missing=Missing.ALLOW) as resolved:
        return resolved.path


# --- the walk -----------------------------------------------------------------------------------


def _child(parent: str, name: str) -> str:
    return parent + name if parent.endswith("/") else f"{parent}/{name}"


def readlink_at(name: str, dir_fd: int) -> str | None:
    """The target of the symlink ``name``, or None if it is no symlink or does not exist."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise


def _open_dir(dir_fd: int, name: str, shown: str) -> tuple[int | None, str | None]:
    """``(fd, None)`` for a folder, ``(None, target)`` for a symlink, ``(None, None)`` if
    missing. A folder and a link trading places between the calls is tried again, and if it
    keeps doing so the whole walk starts over (``_Changed``)."""
    for _ in range(_TRIES):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd), None
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
        link = readlink_at(name, dir_fd)
        if link is not None:
            return None, link
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            continue
        if not (stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):  # a file: no race, just no folder
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), shown)
    raise _Changed


class _Walk:
    """One resolution's state: where we are by name (``here``) and by folder fds."""

    def __init__(self, confinement: Confinement, requested: str) -> None:
        self.conf = confinement
        self.requested = requested
        self.here = "/"
        self.root = ""
        #: ``fds[0]`` is the root we are in, ``fds[k]`` the folder k names below it; empty:
        #: above every root. Only the last ``_MAX_HELD`` stay open (None: closed).
        self.fds: list[int | None] = []
        self.missing: list[str] = []  # names past ``here`` that do not exist
        self.links = 0
        self.restart()

    def close(self) -> None:
        fds, self.fds = self.fds, []
        for fd in fds:
            if fd is not None:
                os.close(fd)

    @property
    def position(self) -> str:
        return "/".join([self.here.rstrip("/") or "", *self.missing]) or "/"

    def top(self) -> int:
        fd = self.fds[-1]
        assert fd is not None  # the top is always held
        return fd

    def restart(self) -> None:
        """Back to ``/``, as an absolute symlink target starts there."""
        self.close()
        self.here, self.root = "/", ""
        self.missing.clear()
        if self.conf.is_root("/"):
            self.enter("/")

    def enter(self, root: str) -> None:
        self.fds = [os.open(root, _ROOT_FLAGS)]
        self.here = self.root = root

    def push(self, fd: int, name: str) -> None:
        self.fds.append(fd)
        self.here = _child(self.here, name)
        old = len(self.fds) - 1 - _MAX_HELD
        if old >= 1 and (stale := self.fds[old]) is not None:
            os.close(stale)
            self.fds[old] = None

    def up(self) -> None:
        if self.missing:
            self.missing.pop()
            return
        if self.fds:
            fd = self.fds.pop()
            if fd is not None:
                os.close(fd)
            if not self.fds:
                self.root = ""
        self.here = os.path.dirname(self.here)
        if self.fds and self.fds[-1] is None:
            self.reopen_top()

    def reopen_top(self) -> None:
        """Reopen the top folder, closed to bound the fds held, from its nearest held
        ancestor; by name with ``O_NOFOLLOW``, so a change meanwhile cannot lead out."""
        index = len(self.fds) - 1
        base = index
        while self.fds[base] is None:
            base -= 1
        names = [n for n in self.here[len(self.root) :].split("/") if n][base:index]
        fd = self.fds[base]
        assert fd is not None
        opened: list[int] = []
        try:
            for name in names:
                fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                opened.append(fd)
        except OSError:
            for stale in opened:
                os.close(stale)
            raise _Changed from None
        for stale in opened[:-1]:
            os.close(stale)
        self.fds[index] = opened[-1]

    def follow(self, link: str, parts: deque[str]) -> None:
        self.links += 1
        if self.links > MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), self.requested)
        parts.extendleft(reversed([p for p in link.split("/") if p]))
        if link.startswith("/"):
            self.restart()

    def above(self, target: str, parts: deque[str]) -> None:
        """One step by name above every root: into a root, down towards one, or along a
        symlink there; anything else is outside."""
        if self.conf.is_root(target):
            self.enter(target)
        elif self.conf.leads_to_root(target):
            self.here = target
        else:
            try:
                link = os.readlink(target)
            except OSError:  # no link, or nothing there: outside all the same
                raise PathRefused(self.requested) from None
            self.follow(link, parts)

    def run(self, follow: bool, missing: Missing) -> Resolved:
        parts = deque(p for p in self.requested.split("/") if p)
        final: str | None = None
        while parts:
            name = parts.popleft()
            if name == ".":
                continue
            if name == "..":
                self.up()
                continue
            last = not parts
            target = _child(self.position, name)
            if self.conf.is_hidden(target):
                raise PathRefused(self.requested)
            if not self.fds:
                self.above(target, parts)
            elif self.missing:
                if last:
                    final = name
                else:
                    self.missing.append(name)
            elif last:
                link = readlink_at(name, self.top()) if follow else None
                if link is None:
                    final = name
                else:
                    self.follow(link, parts)
            else:
                fd, link = _open_dir(self.top(), name, self.requested)
                if fd is not None:
                    self.push(fd, name)
                elif link is not None:
                    self.follow(link, parts)
                else:
                    self.missing.append(name)
        return self.finish(final, missing)

    def finish(self, final: str | None, missing: Missing) -> Resolved:
        if final is None:  # the path names a folder: a root, or it ends in "." or ".."
            if self.missing:
                final = self.missing.pop()
            elif not self.fds:
                raise PathRefused(self.requested)
            elif len(self.fds) == 1:
                fd = self.top()
                self.fds.clear()
                return Resolved(fd, ".", self.here)
            else:
                final = os.path.basename(self.here)
                self.up()
        if self.missing and missing is Missing.FAIL:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self.requested)
        if self.missing and missing is Missing.CREATE:
            self.create()
        fd = self.top()
        self.fds.pop()
        return Resolved(fd, final, _child(self.position, final), tuple(self.missing))

    def create(self) -> None:
        """Create the missing folders one by one; one that appears meanwhile is fine if it is
        a folder, and anything else means walking again."""
        names, self.missing = self.missing, []
        for name in names:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=self.top())
            fd, _ = _open_dir(self.top(), name, self.requested)
            if fd is None:
                raise _Changed
            self.push(fd, name)
