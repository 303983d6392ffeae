"""What a sandboxed process may reach: plain values, decided once per session.

A policy names folders, not rules: the backends (``bwrap``, ``landlock``) turn it into mounts or
kernel rules, and the file tools check paths against it. Two shapes cover every face:

- **tenant** (``serve`` with tokens): read the system folders and the workspace, write only the
  workspace, a private temp folder, an environment built from an allowlist. Nothing of the
  server (its home, config, cwd) and nothing of other tenants is visible at all.
- **local** (run, the REPL, acp, ``serve`` without tokens): read whatever the user can, write
  only the workspace and temp, the user's environment minus every secret openheim knows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from openheim.config.sandbox_settings import Limits, SandboxSettings

#: Read-only system folders a tenant's commands need to run at all. Missing ones are skipped.
SYSTEM_ROOTS: tuple[Path, ...] = tuple(
    Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
)

#: Inside the system folders, what a process running as root could otherwise read and must not:
#: password hashes and the host's SSH keys. Hidden in every policy that reads ``/etc``.
SYSTEM_SECRETS: tuple[Path, ...] = tuple(
    Path(p) for p in ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/ssh")
)


@attrs.frozen
class SandboxPolicy:
    """One session's confinement.

    ``writable`` roots are read-write (the workspace: the session's cwd and additional roots).
    ``readable`` roots are read-only on top of them; ``read_anywhere`` means the whole file
    system is readable (local mode). ``hidden`` paths are never visible, even under a readable
    root (the server's config, its home, system secrets). ``private_tmp`` gives each command an
    empty temp folder of its own instead of the host's ``/tmp``.
    """

    writable: tuple[Path, ...]
    readable: tuple[Path, ...] = SYSTEM_ROOTS
    read_anywhere: bool = False
    hidden: tuple[Path, ...] = SYSTEM_SECRETS
    private_tmp: bool = True
    network: bool = True
    #: The complete environment of a sandboxed process (before the tool's own additions).
    env: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    limits: Limits = attrs.field(factory=Limits)

    @property
    def workspace(self) -> Path:
        """The first writable root: the session's working folder."""
        return self.writable[0]

    def may_read(self, path: Path) -> bool:
        """Whether ``path`` (absolute, already resolved) lies where this policy reads."""
        if _under_any(path, self.hidden):
            return False
        return self.read_anywhere or _under_any(path, (*self.writable, *self.readable))

    def may_write(self, path: Path) -> bool:
        """Whether ``path`` (absolute, already resolved) lies where this policy writes."""
        return not _under_any(path, self.hidden) and _under_any(path, self.writable)


def _under_any(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def tenant_policy(
    workspace: Iterable[Path],
    settings: SandboxSettings,
    env: Mapping[str, str],
    *,
    hidden: Iterable[Path] = (),
) -> SandboxPolicy:
    """A server tenant's policy: system folders read-only, the workspace read-write.

    ``hidden``: the server's own files (config, tokens, home), should any lie in a system
    folder (``/etc/openheim``, say).
    """
    roots = _roots(workspace)
    return SandboxPolicy(
        writable=roots,
        readable=tuple(root for root in SYSTEM_ROOTS if os.path.lexists(root)),
        read_anywhere=False,
        hidden=SYSTEM_SECRETS + _real(hidden),
        private_tmp=True,
        network=settings.network,
        env=env,
        limits=settings.limits,
    )


def local_policy(
    workspace: Iterable[Path],
    settings: SandboxSettings,
    env: Mapping[str, str],
    *,
    temp_dirs: Iterable[Path] = (),
    hidden: Iterable[Path] = (),
) -> SandboxPolicy:
    """A local user's policy: read what the user can, write the workspace and temp only."""
    roots = _roots(workspace)
    temps = _real(temp_dirs)
    return SandboxPolicy(
        writable=roots + tuple(t for t in temps if t not in roots),
        readable=(),
        read_anywhere=True,
        hidden=SYSTEM_SECRETS + _real(hidden),
        private_tmp=False,
        network=settings.network,
        env=env,
        limits=settings.limits,
    )


def _real(paths: Iterable[Path]) -> tuple[Path, ...]:
    return tuple(Path(os.path.realpath(p)) for p in paths)


def _roots(workspace: Iterable[Path]) -> tuple[Path, ...]:
    """Absolute, symlink-free, without repeats, in order (the first is the cwd)."""
    roots: list[Path] = []
    for raw in workspace:
        root = Path(os.path.realpath(raw))
        if root not in roots:
            roots.append(root)
    if not roots:
        raise ValueError("a sandbox policy needs at least one workspace folder")
    return tuple(roots)
