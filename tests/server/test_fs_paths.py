"""The fs path resolver: pure checks by table, ``resolve`` against real files and links."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from openheim.server.fs.paths import (
    OUTSIDE_MESSAGE,
    FsError,
    check_request,
    is_within,
    join_request,
    resolve,
    resolve_entry,
)


@pytest.mark.parametrize(
    ("root", "path", "inside"),
    [
        ("/w/root", "/w/root", True),
        ("/w/root", "/w/root/a", True),
        ("/w/root", "/w/root/a/b", True),
        ("/w/root", "/w/rootkit", False),  # a shared prefix is not containment
        ("/w/root", "/w", False),
        ("/w/root", "/etc/passwd", False),
        ("/", "/anything", True),
        ("/", "/", True),
    ],
)
def test_is_within(root: str, path: str, inside: bool) -> None:
    assert is_within(root, path) is inside


@pytest.mark.parametrize(
    ("requested", "joined"),
    [
        ("", "/w/root"),
        ("a/b", "/w/root/a/b"),
        ("/abs/x", "/abs/x"),
        ("~/x", "/w/root/~/x"),  # never expanded
        ("%2e%2e/x", "/w/root/%2e%2e/x"),  # never decoded
    ],
)
def test_join_request(requested: str, joined: str) -> None:
    assert join_request("/w/root", requested) == joined


@pytest.mark.parametrize("requested", ["a\0b", "..\\..\\x", "a/..\\x", "x\\..", "a\\..\\..\\b"])
def test_check_request_refuses(requested: str) -> None:
    with pytest.raises(FsError, match=OUTSIDE_MESSAGE):
        check_request(requested)


@pytest.mark.parametrize("requested", ["a\\b", "..x", "x..", "a/..b\\c", "...\\x", ""])
def test_check_request_allows_odd_but_harmless_names(requested: str) -> None:
    check_request(requested)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret")
    (tmp_path / "root" / "out").symlink_to(tmp_path / "outside")
    (tmp_path / "root" / "in").symlink_to(tmp_path / "root" / "sub")
    (tmp_path / "root" / "dangling").symlink_to(tmp_path / "outside" / "missing")
    return (tmp_path / "root").resolve()


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("", "."),
        (".", "."),
        ("sub", "sub"),
        ("sub/../sub/new/file", "sub/new/file"),  # `..` that stays inside is fine
        ("in/file", "sub/file"),  # a link inside the root is followed
        ("missing/deeper", "missing/deeper"),
        ("%2e%2e/x", "%2e%2e/x"),
        ("~", "~"),
    ],
)
def test_resolve_inside(root: Path, requested: str, expected: str) -> None:
    assert resolve(root, requested) == (root / expected).resolve()


def test_resolve_absolute_inside(root: Path) -> None:
    assert resolve(root, str(root / "sub")) == root / "sub"


@pytest.mark.parametrize(
    "requested",
    [
        "..",
        "../outside/secret.txt",
        "sub/../../outside",
        "missing/../../outside/x",  # through a component that does not exist
        "/etc/passwd",
        "out",
        "out/secret.txt",
        "out/new/file",
        "dangling",
        "in/../../outside",  # `..` after a link applies to the link's target
        "..\\..\\x",
        "sub\0",
    ],
)
def test_resolve_refuses(root: Path, requested: str) -> None:
    with pytest.raises(FsError, match=OUTSIDE_MESSAGE):
        resolve(root, requested)


def test_resolve_refuses_absolute_sibling(root: Path) -> None:
    with pytest.raises(FsError, match=OUTSIDE_MESSAGE):
        resolve(root, str(root.parent / "outside"))


def test_resolve_through_a_symlinked_root(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert resolve(tmp_path / "alias", "f") == (tmp_path / "real" / "f").resolve()


def test_resolve_entry_keeps_the_link(root: Path) -> None:
    assert resolve_entry(root, "in") == root / "in"
    assert resolve(root, "in") == root / "sub"
    assert resolve_entry(root, "in/") == root / "in"
    assert resolve_entry(root, "sub/..") == root
    assert resolve_entry(root, "") == root


def test_resolve_entry_still_refuses_links_out(root: Path) -> None:
    with pytest.raises(FsError):
        resolve_entry(root, "out")


def test_resolve_symlink_loop_is_eloop(root: Path) -> None:
    os.symlink("loop", root / "loop")
    with pytest.raises(OSError) as caught:
        resolve(root, "loop")
    assert caught.value.errno == errno.ELOOP
    assert resolve_entry(root, "loop") == root / "loop"  # the link itself may still go


def test_resolve_refuses_a_trip_through_outside(root: Path) -> None:
    """Leaving the root and coming back is refused: every step must stay inside."""
    with pytest.raises(FsError, match=OUTSIDE_MESSAGE):
        resolve(root, f"../outside/../{root.name}/sub")


def test_resolve_entry_of_the_root_by_its_absolute_path(root: Path) -> None:
    assert resolve_entry(root, str(root)) == root
