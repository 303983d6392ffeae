"""The ``landlock`` backend: kernel access rules for one process tree, no namespaces needed.

Where bwrap cannot run (no user namespaces: many containers, hardened hosts), Landlock still
confines a command: it may open only what the rules allow, may not bind or connect TCP when the
network is off, and (ABI 6) may not signal or reach abstract sockets outside its sandbox. Each
command starts under ``landlock_exec.py``, a small supervisor that forks the confined command
and, as the child subreaper, kills whatever the command left behind when it ends.

Unlike bwrap it mounts nothing, so there is no private ``/proc`` or ``/tmp``: no command gets
``/proc`` at all (through it, a process could read the server's or the user's shell's
``/proc/PID/environ``, keys included), and a tenant gets a private ``TMPDIR`` instead of a
writable ``/tmp``. And rules only ever allow: a hidden path
under a granted root is cut out by granting its siblings one by one, so the folders on the way
to it can be neither listed nor added to.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import json
import os
import py_compile
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import attrs

from openheim.sandbox.policy import SYSTEM_ROOTS, SandboxPolicy
from openheim.sandbox.sandbox import Launch

#: The launcher; run by path with ``-I -S`` so nothing of the server's environment loads.
HELPER = Path(__file__).with_name("landlock_exec.py")

#: landlock_create_ruleset: x86_64's number is also the generic table's (aarch64).
_SYS_CREATE_RULESET = {"x86_64": 444, "aarch64": 444}
_CREATE_RULESET_VERSION = 1

#: Devices every command may use; nothing else of ``/dev`` is granted.
DEVICES_RW: tuple[Path, ...] = (Path("/dev/null"), Path("/dev/zero"), Path("/dev/full"))
DEVICES_RO: tuple[Path, ...] = (Path("/dev/urandom"), Path("/dev/random"))

#: Never granted to a policy that does not read everywhere: they show other processes.
PROC = Path("/proc")
KERNEL_VIEWS: tuple[Path, ...] = (PROC, Path("/sys"))

#: One argv string may hold at most 128 KiB (MAX_ARG_STRLEN); a longer spec goes in a file.
_MAX_INLINE_SPEC = 100_000


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none, has it disabled, or this is not
    Linux on x86_64 or aarch64."""
    return _query_abi()[0]


def _query_abi() -> tuple[int, int]:
    """(ABI, errno of the failed query or 0)."""
    number = _SYS_CREATE_RULESET.get(os.uname().machine) if sys.platform == "linux" else None
    if number is None:
        return 0, 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(
        ctypes.c_long(number), None, ctypes.c_long(0), ctypes.c_long(_CREATE_RULESET_VERSION)
    )
    return (abi, 0) if abi > 0 else (0, ctypes.get_errno())


def granted_paths(roots: Iterable[Path], hidden: Iterable[Path]) -> list[Path]:
    """``roots`` minus ``hidden``, as the paths to grant: Landlock rules only allow.

    A root with nothing hidden under it is granted whole; a root that is hidden (or lies under
    a hidden path) is dropped; otherwise the root's entries are granted one by one, descending
    only into the entries that lead to something hidden. Reading ``/etc`` while hiding
    ``/etc/shadow`` and ``/etc/ssh`` grants every entry of ``/etc`` but those two. Symlinks
    among the entries are not granted: a rule on one would follow it and grant its target,
    wherever that is, while the link itself needs no rule to be followed.
    """
    hidden_strs = [os.path.normpath(h) for h in hidden]
    granted: dict[str, None] = {}  # ordered, without repeats
    for root in roots:
        top = os.path.normpath(root)
        if not any(_within(top, h) for h in hidden_strs):
            _grant(top, [h for h in hidden_strs if _within(h, top)], granted)
    return [Path(path) for path in granted]


def _within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies under it (plain strings: pathlib is slow for this)."""
    return path == folder or path.startswith(folder if folder.endswith("/") else folder + "/")


def _grant(folder: str, hidden: list[str], granted: dict[str, None]) -> None:
    """Grant ``folder`` less ``hidden``: all of them lie in it, none is it."""
    if not hidden:
        granted[folder] = None
        return
    prefix = folder if folder.endswith("/") else folder + "/"
    leads: dict[str, list[str]] = {}  # entry name -> the hidden paths under that entry
    for h in hidden:
        name = h[len(prefix) :].split("/", 1)[0]
        leads.setdefault(name, []).append(h)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink():
            continue
        path = prefix + entry.name
        under = leads.get(entry.name, [])
        if path not in under:
            _grant(path, under, granted)


def compiled_helper(helper: Path = HELPER) -> str:
    """The launcher as bytecode next to its source (``__pycache__``), compiled when missing or
    older: run from source it would be compiled for every command, ~3 ms each. Its source path
    when the cache cannot be written (a read-only install)."""
    cache = Path(importlib.util.cache_from_source(str(helper)))
    try:
        if cache.stat().st_mtime_ns >= helper.stat().st_mtime_ns:
            return str(cache)
    except OSError:
        pass
    try:
        py_compile.compile(str(helper), cfile=str(cache), doraise=True)
    except (OSError, py_compile.PyCompileError):
        return str(helper)
    return str(cache)


def landlock_spec(policy: SandboxPolicy, temp: Path | None = None) -> dict[str, object]:
    """What ``landlock_exec.py`` enforces for ``policy``; ``temp`` is the command's private
    temp folder, writable."""
    # /proc even when reading everywhere: other processes' environ (the server's, the user's
    # shell's) holds the very keys the environment was stripped of.
    views = (PROC,) if policy.read_anywhere else KERNEL_VIEWS
    hidden = (*policy.hidden, *views)
    readable = (Path("/"),) if policy.read_anywhere else policy.readable
    writable = (*policy.writable, *((temp,) if temp is not None else ()))
    read = [*granted_paths(readable, hidden), *DEVICES_RO]
    write = [*granted_paths(writable, hidden), *DEVICES_RW]
    return {
        "read": [str(path) for path in read],
        "write": [str(path) for path in write],
        "network": policy.network,
        "max_memory_mb": policy.limits.max_memory_mb,
        "max_processes": policy.limits.max_processes,
    }


@attrs.frozen
class LandlockBackend:
    """Each command runs under ``landlock_exec.py`` with the rules of its session's policy."""

    name: str = "landlock"
    #: The interpreter that runs the launcher: this one, without a venv or shim in the way.
    python: str = attrs.field(factory=lambda: os.path.realpath(sys.executable or "python3"))
    #: The launcher: bytecode for this interpreter (set both when changing ``python``).
    helper: str = attrs.field(factory=compiled_helper)

    def prepare(
        self, policy: SandboxPolicy, argv: Sequence[str], cwd: Path, env: Mapping[str, str]
    ) -> Launch:
        """The launch of ``argv``; the caller starts it in ``cwd`` (any folder works, though the
        command can open only what the policy grants). ``env`` is passed on exactly; with
        ``private_tmp`` a fresh temp folder is made and named in TMPDIR, TMP and TEMP."""
        env = dict(env)
        temp = None
        if policy.private_tmp:
            temp = Path(tempfile.mkdtemp(prefix="openheim-tmp-"))
            env.update(TMPDIR=str(temp), TMP=str(temp), TEMP=str(temp))
        spec = landlock_spec(policy, temp)
        # The launcher's parent must be this process (start it directly, as open_process does):
        # checked once PDEATHSIG is armed. LC_CTYPE undoes Python's locale coercion.
        spec.update(parent=os.getpid(), lc_ctype=env.get("LC_CTYPE"))
        text = json.dumps(spec, separators=(",", ":"))
        if len(text) > _MAX_INLINE_SPEC:
            temp = temp or Path(tempfile.mkdtemp(prefix="openheim-tmp-"))
            spec_file = temp / ".openheim-landlock.json"
            spec_file.write_text(text, encoding="utf-8")
            text = f"@{spec_file}"
        launcher = [self.python, "-I", "-S", self.helper, text, "--"]
        return Launch(argv=[*launcher, *argv], env=env, supervised=True, temp=temp)


def probe_landlock(backend: LandlockBackend | None = None) -> str | None:
    """None when the landlock backend works here, else why not, in one line."""
    abi, error = _query_abi()
    if abi == 0:
        return _unsupported(error)
    backend = backend or LandlockBackend()
    workspace = Path(os.path.realpath(tempfile.gettempdir()))
    policy = SandboxPolicy(writable=(workspace,), readable=SYSTEM_ROOTS, private_tmp=False)
    launch = backend.prepare(policy, ["true"], workspace, {"PATH": os.defpath})
    try:
        done = subprocess.run(
            launch.argv,
            env=launch.env,
            cwd=workspace,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the landlock launcher could not run: {error}"
    finally:
        launch.discard()
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit code {done.returncode}"
        return f"a command confined by Landlock fails here: {detail}"
    return None


def _unsupported(error: int) -> str:
    if sys.platform != "linux":
        return "Landlock is a Linux feature"
    machine = os.uname().machine
    if machine not in _SYS_CREATE_RULESET:
        return f"the landlock backend supports x86_64 and aarch64, not {machine}"
    if error == errno.EOPNOTSUPP:  # built in, not enabled
        return (
            "Landlock is not enabled in this kernel (fix: add landlock to the lsm= boot "
            "parameter, or build with CONFIG_LSM including it)"
        )
    if error == errno.ENOSYS:  # not built, or filtered by seccomp (a container runtime)
        return (
            "this kernel has no Landlock, or a seccomp filter hides it (fix: Linux 5.13+ "
            "built with CONFIG_SECURITY_LANDLOCK=y, or a container profile allowing it)"
        )
    return f"Landlock is not available: {os.strerror(error) if error else 'unknown reason'}"
