"""fs path resolver fuzz: random trees of files, folders and symlinks (in and out of the root,
dangling, looping), random requested paths; the kernel is the oracle.

``tests/server/test_fs_paths.py`` pins 31 known escapes; this generalises them. For every
request, ``resolve`` either refuses with the one documented message, fails as the kernel fails
(a loop, a file used as a folder: only where the kernel cannot open the path either), or returns
a path that is inside the root with no symlink left in it. When the kernel itself can open the
requested path, it must name the very file ``resolve`` returned, and a request the kernel
resolves inside the root is never refused (NULs, lone surrogates and the backslash rule aside).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import attrs
from hypothesis import example, given
from hypothesis import strategies as st

from openheim.server.fs.paths import OUTSIDE_MESSAGE, FsError, resolve, resolve_entry
from tests.fuzz.profiles import FUZZ

#: Entries a tree may hold, parents before children.
SLOTS = ("a", "b", "a/x", "a/y", "b/z", "a/x/deep", "ü 😀")
#: Symlink targets, relative to the link or absolute ({root}, {outside} filled in).
TARGETS = (
    ".",
    "..",
    "../..",
    "../outside",
    "../outside/secret.txt",
    "../../outside",
    "a",
    "x",
    "b/z",
    "missing",
    "../outside/missing",
    "{root}",
    "{root}/a",
    "{outside}",
    "{outside}/secret.txt",
    "/",
    "/etc",
    "{root}/../outside",
    "loop",
    "a/x/deep",
)
#: Pieces of requested paths, escapes and odd names included.
PIECES = (
    "",
    ".",
    "..",
    "a",
    "b",
    "x",
    "y",
    "z",
    "deep",
    "missing",
    "ü 😀",
    "outside",
    "secret.txt",
    "~",
    "%2e%2e",
    "..\\x",
    "a\\..\\..",
    "x\\..",
    "...",
    "\0",
    "a\0b",
    "\ud800",  # a lone surrogate, as a JSON "\ud800" escape gives it
    "\udcff",  # a surrogate-escaped byte: a valid (non-UTF-8) Linux name
    " ",
    "loop",
)
_PREFIXES = ("", "", "", "/", "//", "{root}/", "{outside}/", "{base}/")


@attrs.frozen
class Entry:
    kind: str  # "dir" | "file" | "link"
    target: str = ""


_entries = st.one_of(
    st.just(Entry("dir")),
    st.just(Entry("file")),
    st.builds(Entry, st.just("link"), st.sampled_from(TARGETS)),
)
trees = st.dictionaries(st.sampled_from(SLOTS), _entries, max_size=len(SLOTS))
requests = st.builds(
    lambda prefix, parts, slash: prefix + "/".join(parts) + slash,
    st.sampled_from(_PREFIXES),
    st.lists(st.sampled_from(PIECES), max_size=5),
    st.sampled_from(["", "", "/"]),
)


@attrs.frozen
class Layout:
    base: Path
    root: Path
    outside: Path

    def fill(self, text: str) -> str:
        return text.format(root=self.root, outside=self.outside, base=self.base)


def build(base: Path, tree: dict[str, Entry]) -> Layout:
    """``base/root`` with ``tree`` in it, and ``base/outside`` holding a secret."""
    layout = Layout(base, base / "root", base / "outside")
    layout.root.mkdir()
    layout.outside.mkdir()
    (layout.outside / "secret.txt").write_text("secret")
    for slot in SLOTS:
        entry = tree.get(slot)
        path = layout.root / slot
        # Only under real folders of the tree: a link as an ancestor could lead anywhere.
        if entry is None or not path.parent.is_dir() or not no_link_in(str(layout.root), slot):
            continue
        if entry.kind == "dir":
            path.mkdir()
        elif entry.kind == "file":
            path.write_text(slot)
        else:
            os.symlink(layout.fill(entry.target), path)
    return layout


def kernel_path(path: str) -> str | None:
    """Where the kernel says ``path`` leads (following every link), or None if it cannot open
    it (missing, a loop, not encodable, a NUL)."""
    try:
        fd = os.open(path, os.O_PATH)
    except (OSError, ValueError):
        return None
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def no_link_in(root: str, path: str) -> bool:
    """No existing component of ``path`` (absolute, or relative to ``root``) below ``root``
    is a symlink, checked one by one."""
    current = root
    for part in Path(os.path.join(root, path)).relative_to(root).parts:
        current = os.path.join(current, part)
        if os.path.islink(current):
            return False
    return True


def only_looping_links_in(root: str, path: str) -> bool:
    """Every symlink left in ``path`` below ``root`` is a loop: it leads nowhere (``ELOOP``),
    as ``realpath`` leaves it (``test_resolve_symlink_loop_stays_inside``)."""
    current = root
    for part in Path(path).relative_to(root).parts:
        current = os.path.join(current, part)
        if os.path.islink(current):
            try:
                os.stat(current)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    continue
            return False
    return True


def inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def refused_by_policy(requested: str) -> bool:
    """What the spec refuses whatever the kernel would do: NULs, ``..`` between backslashes,
    and names no file can have (lone surrogates)."""
    if "\0" in requested:
        return True
    try:
        os.fsencode(requested)
    except UnicodeEncodeError:
        return True
    return any(".." in part.split("\\") for part in requested.split("/") if "\\" in part)


@FUZZ
@example(tree={}, requested="\ud800")
@example(tree={"a": Entry("link", "{outside}")}, requested="a/../a/secret.txt")
@example(tree={"a": Entry("link", "loop")}, requested="a/x")
@given(tree=trees, requested=requests)
def test_resolve_confines_every_path(tree: dict[str, Entry], requested: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        layout = build(Path(tmp).resolve(), tree)
        requested = layout.fill(requested)
        root = str(layout.root)
        joined = requested if os.path.isabs(requested) else os.path.join(root, requested)
        kernel = kernel_path(joined)
        try:
            resolved = resolve(layout.root, requested)
        except FsError as exc:
            assert exc.message == OUTSIDE_MESSAGE
            if kernel is not None:  # the kernel leaves the root, or a spec rule refuses it
                assert not inside(root, kernel) or refused_by_policy(requested), kernel
            return
        except OSError:
            assert kernel is None  # the kernel cannot resolve it either
            return
        target = str(resolved)
        assert not refused_by_policy(requested)
        assert os.path.isabs(target) and os.path.normpath(target) == target
        assert inside(root, target)
        assert only_looping_links_in(root, target), "a link left in the path leads somewhere"
        if kernel is not None:
            assert kernel == target


@FUZZ
@example(tree={"a": Entry("link", "{outside}")}, requested="a")
@example(tree={"a": Entry("link", "missing")}, requested="a/")
@given(tree=trees, requested=requests)
def test_resolve_entry_never_leaves_the_root(tree: dict[str, Entry], requested: str) -> None:
    """``delete``/``rename`` act on the entry itself: its folder is inside the root and has no
    link in it, and a link is only acted on when what it points to is inside too."""
    with tempfile.TemporaryDirectory() as tmp:
        layout = build(Path(tmp).resolve(), tree)
        requested = layout.fill(requested)
        root = str(layout.root)
        joined = requested if os.path.isabs(requested) else os.path.join(root, requested)
        try:
            entry = resolve_entry(layout.root, requested)
        except FsError as exc:
            assert exc.message == OUTSIDE_MESSAGE
            return
        except OSError:  # a missing folder, a loop, a file used as a folder on the way
            assert kernel_path(joined) is None
            return
        path = str(entry)
        assert inside(root, path)
        if path != root:
            assert entry.name not in ("", ".", "..")
            assert only_looping_links_in(root, str(entry.parent))
        if os.path.islink(path):
            assert inside(root, os.path.realpath(path))
        try:
            target = resolve(layout.root, requested)
        except OSError:  # a link that loops: the entry itself may still be acted on
            return
        assert inside(root, str(target))
