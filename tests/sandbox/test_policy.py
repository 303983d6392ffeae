"""Policies as values: what each shape reads, writes and hides, and bwrap's argv for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from openheim.config.sandbox_settings import Limits, SandboxSettings
from openheim.sandbox.bwrap import bwrap_argv
from openheim.sandbox.policy import SYSTEM_SECRETS, local_policy, tenant_policy


def test_a_tenant_reads_system_folders_and_its_workspace_and_writes_only_the_workspace(
    tmp_path: Path,
) -> None:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    alice.mkdir()
    bob.mkdir()
    policy = tenant_policy([alice], SandboxSettings(), {"PATH": "/bin"})
    assert policy.private_tmp and not policy.read_anywhere
    assert policy.may_read(Path("/usr/bin/env")) and not policy.may_write(Path("/usr/bin/x"))
    assert policy.may_read(alice / "f") and policy.may_write(alice / "d" / "f")
    assert not policy.may_read(bob / "f") and not policy.may_write(bob / "f")
    assert not policy.may_read(Path("/etc/shadow")) and not policy.may_read(Path("/etc/ssh/k"))
    assert not policy.may_read(Path("/root")) and not policy.may_read(Path("/proc/1/environ"))


def test_a_local_user_reads_anything_but_writes_only_the_workspace_and_temp(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "home" / "config.toml"
    policy = local_policy([work], SandboxSettings(), {}, temp_dirs=[Path("/tmp")], hidden=[config])
    assert policy.may_read(Path("/home/someone/notes")) and policy.may_read(tmp_path)
    assert policy.may_write(work / "f") and policy.may_write(Path("/tmp/x"))
    assert not policy.may_write(Path("/usr/local/bin/x")) and not policy.may_write(Path("/etc/x"))
    assert not policy.may_read(config)


def test_roots_are_real_paths_without_repeats(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    policy = tenant_policy([tmp_path / "link", real], SandboxSettings(), {})
    assert policy.writable == (real,)
    with pytest.raises(ValueError, match="at least one"):
        tenant_policy([], SandboxSettings(), {})


def test_bwrap_argv_mounts_tmp_before_the_workspace_and_hides_secrets_last(
    tmp_path: Path,
) -> None:
    work = tmp_path / "alice"
    work.mkdir()
    policy = tenant_policy([work], SandboxSettings(network=False), {})
    argv = bwrap_argv(policy, ["sh", "-c", "true"], work)
    assert argv[0] == "bwrap" and argv[-4:] == ["--", "sh", "-c", "true"]
    assert "--unshare-all" in argv and "--die-with-parent" in argv
    assert "--share-net" not in argv
    assert argv.index("--tmpfs") < argv.index("--bind")
    assert argv[argv.index("--bind") + 1 : argv.index("--bind") + 3] == [str(work), str(work)]
    assert argv[argv.index("--chdir") + 1] == str(work)
    hidden = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--remount-ro"]
    hidden += [
        argv[i + 2]
        for i, arg in enumerate(argv)
        if arg == "--ro-bind" and argv[i + 1] == "/dev/null"
    ]
    present = [str(p) for p in SYSTEM_SECRETS if p.exists()]
    assert sorted(hidden) == sorted(present)
    assert str(tmp_path) not in " ".join(argv).replace(str(work), "")


def test_limits_put_prlimit_in_front() -> None:
    policy = tenant_policy(
        [Path("/")], SandboxSettings(limits=Limits(max_memory_mb=64, max_processes=32)), {}
    )
    argv = bwrap_argv(policy, ["true"], Path("/"))
    assert argv[:5] == ["prlimit", f"--as={64 * 1024 * 1024}", "--nproc=32", "--core=0", "--"]
