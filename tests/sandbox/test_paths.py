"""The race-free resolver against real trees in tmp_path: what it refuses, where it leads."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import pytest

from openheim.sandbox import fileops, paths
from openheim.sandbox.paths import (
    Access,
    Confinement,
    InvalidPath,
    Missing,
    PathRefused,
    Resolved,
    check,
    resolve,
)
from openheim.sandbox.policy import SandboxPolicy


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """``alice/`` (the root) beside ``bob/``, with links of every kind in alice."""
    base = tmp_path.resolve()
    alice, bob = base / "alice", base / "bob"
    (alice / "sub" / "deep").mkdir(parents=True)
    (alice / "f.txt").write_text("alice")
    (alice / "sub" / "g.txt").write_text("g")
    bob.mkdir()
    (bob / "secret.txt").write_text("bob-secret")
    (alice / "out").symlink_to(bob)
    (alice / "out_rel").symlink_to("../bob")
    (alice / "out_file").symlink_to(bob / "secret.txt")
    (alice / "dangling").symlink_to(bob / "missing.txt")
    (alice / "in").symlink_to("sub")
    (alice / "in_abs").symlink_to(alice / "sub" / "g.txt")
    (alice / "loop").symlink_to("loop")
    (alice / "ping").symlink_to("pong")
    (alice / "pong").symlink_to("ping")
    return base


@pytest.fixture
def alice(base: Path) -> Confinement:
    return Confinement((str(base / "alice"),))


def where(confinement: Confinement, path: str, **kwargs: object) -> tuple[str, str]:
    """The final name and logical path ``path`` resolves to (relative: to the first root)."""
    full = path if path.startswith("/") else os.path.join(confinement.roots[0], path)
    with resolve(confinement, full, **kwargs) as resolved:  # type: ignore[arg-type]
        assert resolved.dir_fd >= 0
        return resolved.name, resolved.path


def refused(confinement: Confinement, path: str, **kwargs: object) -> bool:
    try:
        where(confinement, path, **kwargs)
    except PathRefused:
        return True
    return False


# --- where paths lead ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "name", "logical"),
    [
        ("f.txt", "f.txt", "f.txt"),
        ("sub/g.txt", "g.txt", "sub/g.txt"),
        ("./sub/../f.txt", "f.txt", "f.txt"),
        ("in/g.txt", "g.txt", "sub/g.txt"),  # a folder link inside is followed
        ("in_abs", "g.txt", "sub/g.txt"),  # so is a final link, absolute or not
        ("in/../f.txt", "f.txt", "f.txt"),  # `..` after a link applies to its target
        ("sub/deep/", "deep", "sub/deep"),
        ("sub/deep/.", "deep", "sub/deep"),
        ("new.txt", "new.txt", "new.txt"),  # a missing final name is fine
        ("nope/../f.txt", "f.txt", "f.txt"),  # a missing folder undone by `..`
        ("%2e%2e", "%2e%2e", "%2e%2e"),
        ("~", "~", "~"),
    ],
)
def test_resolves_inside(
    base: Path, alice: Confinement, requested: str, name: str, logical: str
) -> None:
    assert where(alice, requested) == (name, str(base / "alice" / logical))


@pytest.mark.parametrize("requested", ["", ".", "sub/..", "in/.."])
def test_the_root_itself(base: Path, alice: Confinement, requested: str) -> None:
    assert where(alice, requested) == (".", str(base / "alice"))
    with resolve(alice, str(base / "alice")) as resolved:
        assert resolved.is_root


@pytest.mark.parametrize(
    "requested",
    [
        "..",
        "../bob/secret.txt",  # dotdot climbing out
        "sub/../../bob/secret.txt",
        "nope/../../bob/secret.txt",  # through a folder that does not exist
        "{base}/bob/secret.txt",  # an absolute path elsewhere
        "{base}",
        "/etc/passwd",
        "/",
        "out/secret.txt",  # a link in the middle pointing out
        "out_rel/secret.txt",
        "out/../alice/f.txt",  # out and back in: every step must stay inside
        "out",  # a final link pointing out
        "out_file",
        "dangling",  # a dangling link pointing out
        "in/../../bob",
    ],
)
def test_refused(base: Path, alice: Confinement, requested: str) -> None:
    path = requested.format(base=base)
    for follow in (True, False) if requested not in ("out", "out_file", "dangling") else (True,):
        for missing in Missing:
            assert refused(alice, path, follow=follow, missing=missing), (follow, missing)


def test_a_final_link_out_is_an_entry_when_not_followed(base: Path, alice: Confinement) -> None:
    assert where(alice, "out", follow=False) == ("out", str(base / "alice" / "out"))
    assert where(alice, "in/", follow=False) == ("in", str(base / "alice" / "in"))


@pytest.mark.parametrize("requested", ["loop", "ping", "ping/x", "loop/../f.txt"])
def test_link_loops_are_eloop(alice: Confinement, requested: str) -> None:
    with pytest.raises(OSError) as caught:
        where(alice, requested)
    assert caught.value.errno == errno.ELOOP


def test_forty_links_are_fine_forty_one_are_not(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "l0").write_text("end")
    for i in range(1, 42):
        (root / f"l{i}").symlink_to(f"l{i - 1}")
    confinement = Confinement((str(root),))
    assert where(confinement, "l40") == ("l0", str(root / "l0"))
    with pytest.raises(OSError) as caught:
        where(confinement, "l41")
    assert caught.value.errno == errno.ELOOP


def test_a_file_used_as_a_folder(alice: Confinement) -> None:
    with pytest.raises(NotADirectoryError):
        where(alice, "f.txt/x")


@pytest.mark.parametrize("requested", ["a\0b", "sub/\0", "\ud800", "sub/\udfff/x"])
def test_names_no_file_can_have(alice: Confinement, requested: str) -> None:
    with pytest.raises(InvalidPath):
        where(alice, requested)


def test_a_surrogate_escaped_byte_is_a_valid_name(base: Path, alice: Confinement) -> None:
    assert where(alice, "\udcff") == ("\udcff", str(base / "alice" / "\udcff"))


def test_relative_paths_are_a_caller_bug(alice: Confinement) -> None:
    with pytest.raises(ValueError, match="absolute"):
        resolve(alice, "f.txt")


# --- hidden paths -------------------------------------------------------------------------------


def test_hidden_paths_are_refused_every_way(base: Path) -> None:
    alice = base / "alice"
    (alice / "sub" / "private").mkdir()
    (alice / "sub" / "private" / "key").write_text("k")
    (alice / "to_private").symlink_to(alice / "sub" / "private")
    confinement = Confinement((str(alice),), hidden=(str(alice / "sub" / "private"),))
    for requested in (
        "sub/private",
        "sub/private/key",
        "sub/private/missing",
        "in/private/key",
        "to_private/key",
        "sub/deep/../private/key",
    ):
        assert refused(confinement, requested), requested
    assert where(confinement, "sub/g.txt")[0] == "g.txt"
    assert where(confinement, "sub/privatex")[0] == "privatex"  # a shared prefix is not under


# --- policies -----------------------------------------------------------------------------------


def test_confinement_of_a_policy(base: Path) -> None:
    (base / "link_to_alice").symlink_to(base / "alice")
    tenant = SandboxPolicy(
        writable=(base / "link_to_alice",),
        readable=(base / "bob",),
        read_anywhere=False,
        hidden=(base / "bob" / "secret.txt",),
    )
    alice, bob = str(base / "alice"), str(base / "bob")
    assert Confinement.of(tenant, Access.WRITE) == Confinement((alice,), (f"{bob}/secret.txt",))
    assert Confinement.of(tenant, Access.READ).roots == (alice, bob)
    local = SandboxPolicy(writable=(base / "alice",), readable=(), read_anywhere=True, hidden=())
    assert Confinement.of(local, Access.READ).roots == ("/",)
    assert Confinement.of(local, Access.WRITE).roots == (alice,)


def test_read_anywhere_still_hides(base: Path) -> None:
    confinement = Confinement(("/",), hidden=(str(base / "bob"),))
    assert where(confinement, str(base / "alice" / "f.txt"))[0] == "f.txt"
    assert where(confinement, "/")[0] == "."
    assert refused(confinement, str(base / "bob" / "secret.txt"))
    assert refused(confinement, str(base / "alice" / "out" / "secret.txt"))


def test_a_root_reached_through_a_link_above_it(base: Path, alice: Confinement) -> None:
    """A cwd given through a symlink (``~/proj`` -> ``/data/proj``) still finds its root."""
    (base / "alias").symlink_to("alice")
    assert where(alice, str(base / "alias" / "f.txt")) == ("f.txt", str(base / "alice/f.txt"))
    assert refused(alice, str(base / "bob_alias" / "x"))


def test_several_roots(base: Path) -> None:
    both = Confinement((str(base / "alice" / "sub"), str(base / "bob")))
    assert where(both, str(base / "bob" / "secret.txt"))[0] == "secret.txt"
    assert where(both, str(base / "alice" / "sub" / "g.txt"))[0] == "g.txt"
    assert refused(both, str(base / "alice" / "f.txt"))
    assert refused(both, str(base / "alice" / "sub" / ".." / "f.txt"))


# --- missing folders ----------------------------------------------------------------------------


def test_missing_folders(base: Path, alice: Confinement) -> None:
    with pytest.raises(FileNotFoundError):
        where(alice, "a/b/c.txt")
    assert check(alice, str(base / "alice" / "a/b/c.txt")) == str(base / "alice/a/b/c.txt")
    assert not (base / "alice" / "a").exists()  # a check creates nothing
    assert where(alice, "a/b/c.txt", missing=Missing.CREATE) == (
        "c.txt",
        str(base / "alice/a/b/c.txt"),
    )
    assert (base / "alice" / "a" / "b").is_dir()
    assert not (base / "alice" / "a" / "b" / "c.txt").exists()


def test_a_refused_write_creates_nothing(base: Path, alice: Confinement) -> None:
    before = sorted(os.listdir(base / "alice"))
    assert refused(alice, "x/y/../../../bob/z", missing=Missing.CREATE)
    assert sorted(os.listdir(base / "alice")) == before
    assert sorted(os.listdir(base / "bob")) == ["secret.txt"]


def test_allow_reports_what_is_missing(base: Path, alice: Confinement) -> None:
    path = str(base / "alice" / "a" / "b" / "c.txt")
    with resolve(alice, path, missing=Missing.ALLOW) as resolved:
        assert (resolved.name, resolved.missing) == ("c.txt", ("a", "b"))


def test_create_follows_a_link_inside_and_refuses_one_out(base: Path, alice: Confinement) -> None:
    assert where(alice, "in/new/x.txt", missing=Missing.CREATE)[1] == str(
        base / "alice/sub/new/x.txt"
    )
    assert (base / "alice" / "sub" / "new").is_dir()
    assert refused(alice, "out/new/x.txt", missing=Missing.CREATE)
    assert not (base / "bob" / "new").exists()


# --- fds ----------------------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_fds_are_closed(base: Path, alice: Confinement) -> None:
    before = open_fds()
    for requested in ("sub/deep/x", "in/g.txt", "out/x", "loop", "nope/x", ""):
        with contextlib.suppress(OSError, PathRefused):
            where(alice, requested)
    assert open_fds() == before


def test_deep_paths_hold_few_fds_and_climb_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "_MAX_HELD", 3)
    root = tmp_path.resolve()
    deep = root.joinpath(*"abcdefgh")
    deep.mkdir(parents=True)
    (root / "a" / "b" / "x.txt").write_text("x")
    confinement = Confinement((str(root),))
    requested = "a/b/c/d/e/f/g/h/" + "../" * 6 + "x.txt"
    assert where(confinement, requested) == ("x.txt", str(root / "a/b/x.txt"))
    assert where(confinement, "a/b/c/d/e/f/g/h/" + "../" * 8 + ".")[0] == "."


# --- operations ---------------------------------------------------------------------------------


def test_open_final_never_follows(base: Path, alice: Confinement) -> None:
    with resolve(alice, str(base / "alice" / "in"), follow=False) as resolved:
        for flags in (os.O_RDONLY, os.O_RDONLY | os.O_DIRECTORY, os.O_PATH | os.O_DIRECTORY):
            with pytest.raises(OSError) as caught:
                fileops.open_final(resolved, flags)
            assert caught.value.errno == errno.ELOOP


def test_retrying_walks_again_after_a_swap(base: Path, alice: Confinement) -> None:
    """A link swapped in at the final name after the walk: the op's ELOOP walks again."""
    calls: list[str] = []

    def op(resolved: Resolved) -> str:
        calls.append(resolved.name)
        if len(calls) == 1:
            raise OSError(errno.ELOOP, "swapped")
        return resolved.path

    assert fileops.retrying(alice, str(base / "alice" / "f.txt"), op) == str(
        base / "alice" / "f.txt"
    )
    assert calls == ["f.txt", "f.txt"]

    def always(resolved: Resolved) -> str:
        raise OSError(errno.ELOOP, "swapped")

    with pytest.raises(OSError):
        fileops.retrying(alice, str(base / "alice" / "f.txt"), always)


def test_open_beneath_takes_real_folders_only(base: Path) -> None:
    fd = os.open(base / "alice", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(fileops.open_beneath(fd, ("sub", "deep")))
        for names in (("in",), ("out",), ("in", "deep")):
            with pytest.raises(NotADirectoryError):
                fileops.open_beneath(fd, names)
    finally:
        os.close(fd)


def test_remove_tree_and_remove_act_on_the_entry(base: Path, alice: Confinement) -> None:
    (base / "alice" / "tree" / "t").mkdir(parents=True)
    (base / "alice" / "tree" / "t" / "f").write_text("x")
    (base / "alice" / "tree" / "to_bob").symlink_to(base / "bob")
    with resolve(alice, str(base / "alice" / "tree"), follow=False) as resolved:
        fileops.remove_tree(resolved)
    with resolve(alice, str(base / "alice" / "out"), follow=False) as resolved:
        fileops.remove(resolved)
    assert not (base / "alice" / "tree").exists()
    assert not (base / "alice" / "out").is_symlink()
    assert (base / "bob" / "secret.txt").read_text() == "bob-secret"
