"""The ``bwrap`` backend: bubblewrap namespaces, built from a policy as one argv (sans-IO).

Every namespace is new (user, mount, pid, ipc, uts, cgroup; net too when the network is off),
so the command sees only what is mounted: the system folders read-only, the workspace
read-write at its real path, a private ``/tmp``, a minimal ``/dev`` and a fresh ``/proc`` that
shows the sandbox's own processes and nothing else. The command runs as pid 2 under bwrap's
init; when the command ends, or bwrap is killed (``--die-with-parent`` covers our own death),
the pid namespace ends and the kernel kills everything left in it, ``setsid`` daemons included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from openheim.sandbox.limits import limit_argv
from openheim.sandbox.policy import SandboxPolicy
from openheim.sandbox.sandbox import Launch

BWRAP = "bwrap"


@attrs.frozen
class BwrapBackend:
    """Runs each command in a fresh bwrap sandbox; stopping bwrap ends the whole tree."""

    executable: str = BWRAP
    name: str = "bwrap"

    def prepare(
        self, policy: SandboxPolicy, argv: Sequence[str], cwd: Path, env: Mapping[str, str]
    ) -> Launch:
        return Launch(bwrap_argv(policy, argv, cwd, executable=self.executable), dict(env))


def bwrap_argv(
    policy: SandboxPolicy,
    argv: Sequence[str],
    cwd: Path,
    *,
    executable: str = BWRAP,
) -> list[str]:
    """The argv that runs ``argv`` in ``cwd`` under ``policy``.

    Mount order matters: a later mount hides an earlier one at or above the same place, so the
    private ``/tmp`` comes before the workspace (which may live under ``/tmp``) and the hidden
    paths come last. Only the host's layout is read (which roots are symlinks, which hidden
    paths exist); nothing is started.
    """
    args = [
        executable,
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--cap-drop",
        "ALL",
        "--hostname",
        "openheim",
    ]
    if policy.network:
        args.append("--share-net")
    if policy.read_anywhere:
        args += ["--ro-bind", "/", "/"]
    else:
        for root in policy.readable:
            args += _read_only(root)
    args += ["--dev", "/dev", "--proc", "/proc"]
    if policy.private_tmp:
        args += ["--tmpfs", "/tmp"]
    for root in policy.writable:
        args += ["--bind", str(root), str(root)]
    mounted = (*policy.writable, *policy.readable)
    for path in policy.hidden:
        if policy.read_anywhere or any(path.is_relative_to(root) for root in mounted):
            args += _hide(path)
    args += ["--chdir", str(cwd), "--", *argv]
    return limit_argv(policy.limits) + args


def _read_only(root: Path) -> list[str]:
    """A system folder as the host has it: merged-/usr symlinks (``/bin -> usr/bin``) stay
    symlinks, so paths inside resolve exactly as outside."""
    if root.is_symlink():
        return ["--symlink", os.readlink(root), str(root)]
    return ["--ro-bind-try", str(root), str(root)]


def _hide(path: Path) -> list[str]:
    """Cover ``path`` with something empty: an empty tmpfs for a folder, /dev/null for a file.
    Paths that do not exist are left alone (nothing to hide, and bwrap would create them)."""
    if path.is_dir() and not path.is_symlink():
        return ["--tmpfs", str(path), "--remount-ro", str(path)]
    if path.exists():
        return ["--ro-bind", "/dev/null", str(path)]
    return []
