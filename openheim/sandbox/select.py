"""Choosing a backend once per process: ``auto`` takes the first that works here.

A backend "works" when it runs ``true`` under a policy like a tenant's: bwrap can be installed
yet unusable (user namespaces blocked in a container), and Landlock can be compiled in yet
disabled. Probing costs a few milliseconds, once, at start.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import attrs

from openheim.config.sandbox_settings import SandboxMode
from openheim.foundation.errors import SandboxError
from openheim.sandbox.bwrap import BWRAP, BwrapBackend, bwrap_argv
from openheim.sandbox.policy import SYSTEM_ROOTS, SandboxPolicy
from openheim.sandbox.sandbox import Backend, NoBackend

_PROBE_TIMEOUT_SECS = 10.0

BWRAP_FIX = (
    "install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces "
    "(sysctl kernel.unprivileged_userns_clone=1; in Docker, a seccomp profile that permits them)"
)


@attrs.frozen
class Choice:
    """The backend in use and why: shown by doctor, at ``serve`` start and in ``/api/config``."""

    mode: SandboxMode
    backend: Backend
    #: Why the others were passed over (``auto``), or empty.
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.backend.name

    def describe(self) -> str:
        text = f"{self.name} (mode {self.mode.value})"
        return f"{text}; {'; '.join(self.notes)}" if self.notes else text


def probe_bwrap() -> str | None:
    """None if bwrap confines a command here, else one line saying why not."""
    executable = shutil.which(BWRAP)
    if executable is None:
        return "bwrap is not installed"
    with tempfile.TemporaryDirectory(prefix="openheim-probe-") as folder:
        policy = SandboxPolicy(
            writable=(Path(folder),), readable=SYSTEM_ROOTS, network=False, private_tmp=True
        )
        argv = bwrap_argv(policy, ["true"], Path(folder), executable=executable)
        return _probe(argv, "bwrap")


def probe_landlock() -> str | None:
    """None if Landlock confines a command here, else one line saying why not."""
    from openheim.sandbox.landlock import probe_landlock as probe

    return probe()


def _probe(argv: list[str], name: str) -> str | None:
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_SECS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{name} could not run: {exc}"
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        return f"{name} failed here: {reason[-1] if reason else f'exit {done.returncode}'}"
    return None


def landlock_backend() -> Backend:
    from openheim.sandbox.landlock import LandlockBackend

    return LandlockBackend()


def choose(mode: SandboxMode) -> Choice:
    """The backend for ``mode``; blocking (it runs probes), so call it in a worker thread.

    Raises ``SandboxError`` when a named backend does not work here: asking for ``bwrap`` and
    silently getting less would be a downgrade nobody chose.
    """
    if mode is SandboxMode.NONE:
        return Choice(mode, NoBackend())
    if mode is SandboxMode.BWRAP:
        reason = probe_bwrap()
        if reason is not None:
            raise SandboxError(f"sandbox mode bwrap: {reason}; fix: {BWRAP_FIX}")
        return Choice(mode, BwrapBackend(executable=shutil.which(BWRAP) or BWRAP))
    if mode is SandboxMode.LANDLOCK:
        reason = probe_landlock()
        if reason is not None:
            raise SandboxError(f"sandbox mode landlock: {reason}")
        return Choice(mode, landlock_backend())
    notes: list[str] = []
    reason = probe_bwrap()
    if reason is None:
        return Choice(mode, BwrapBackend(executable=shutil.which(BWRAP) or BWRAP))
    notes.append(f"not bwrap: {reason}")
    reason = probe_landlock()
    if reason is None:
        return Choice(mode, landlock_backend(), tuple(notes))
    notes.append(f"not landlock: {reason}")
    return Choice(mode, NoBackend(), tuple(notes))
