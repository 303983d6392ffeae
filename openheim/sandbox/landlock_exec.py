"""The landlock backend's launcher: confine one command with Landlock and reap its whole tree.

Run as ``python -I -S landlock_exec.py SPEC -- ARGV...`` (``SPEC`` is JSON, or ``@file`` holding
it). It stays a supervisor, unconfined because it reads ``/proc``: the child it forks sets
rlimits and ``no_new_privs``, restricts itself and execs ``ARGV``. As the child subreaper the
supervisor inherits every orphan of the command, so when the command ends, or on SIGTERM, SIGINT
or SIGHUP, it SIGKILLs whatever is left (``setsid`` daemons and double forks included) and exits
with the command's code, or 128+N when the command was killed by signal N (the shell's way: an
exit status is all a supervisor can pass on without killing itself).

The spec: ``read`` and ``write``, paths granted read-only (with execute) and read-write (paths
that do not exist are skipped); ``network`` (false: no TCP bind or connect); ``max_memory_mb``
and ``max_processes`` (null: unlimited; cores are always off); ``parent``, the pid that must be
our parent; ``lc_ctype``, the command's LC_CTYPE (null: unset).

Standalone on purpose: no ``openheim`` import (``-S`` leaves site-packages off the path), and
only C modules, since this starts for every command. ``json`` (it imports ``re``), ``signal``
(``enum``), ``ctypes`` and ``os`` would take longer to import than the interpreter takes to
start; their C halves ``_json``, ``_signal``, ``_ctypes`` and ``posix`` do the same work.
"""

# No ``from __future__ import annotations``: importing it reads a file too, and every
# annotation here is valid at run time on 3.11.
import _ctypes
import _signal
import posix
import sys

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

RLIMIT_CORE = 4
RLIMIT_NPROC = 6
RLIMIT_AS = 9

SYS_CREATE_RULESET = 444  # the same in the generic table (aarch64) as on x86_64
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
#: The only rights a rule on a non-directory may carry (anything else is EINVAL).
FS_FILE = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
NET_TCP = 1 | 2  # BIND_TCP | CONNECT_TCP, ABI 4
SCOPES = 1 | 2  # ABSTRACT_UNIX_SOCKET | SIGNAL, ABI 6

STOP_SIGNALS = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP)
PREFIX = "openheim sandbox: "


class Long(_ctypes._SimpleCData):
    """C ``long``: every argument of the variadic ``syscall`` and ``prctl``."""

    _type_ = "l"


class U64(_ctypes._SimpleCData):
    _type_ = "Q"


class Rlimit(_ctypes.Array):
    """``struct rlimit``: soft and hard ``rlim_t``."""

    _type_ = U64
    _length_ = 2


class _Function(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = Long


class _Libc:
    """What ``_ctypes.CFuncPtr`` needs of a library: its handle (this process's symbols)."""

    _handle = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)


def _libc(name: str) -> _Function:
    return _Function((name, _Libc))


class _SpecContext:
    """What ``_json.make_scanner`` reads off ``json.JSONDecoder``: plain JSON, no hooks."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = None


def load_spec(text: str) -> dict[str, object]:
    """The spec, parsed with the C scanner of ``json`` alone."""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as file:
            text = file.read()
    try:
        import _json

        value, end = _json.make_scanner(_SpecContext)(text, 0)
        if end != len(text):
            raise ValueError("extra data")
    except Exception:  # no _json, or not JSON: json says what is wrong (slowly, rarely)
        import json

        value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("the spec is not a JSON object")
    return value


def main(args: list[str]) -> int:
    if len(args) < 4 or args[2] != "--":
        _say("usage: landlock_exec.py SPEC -- COMMAND...")
        return 126
    try:
        spec = load_spec(args[1])
    except (OSError, ValueError) as error:
        _say(f"bad spec: {error}")
        return 126
    try:
        _check(_prctl(PR_SET_CHILD_SUBREAPER, 1), "child subreaper")
        _check(_prctl(PR_SET_PDEATHSIG, _signal.SIGTERM), "parent death signal")
    except OSError as error:
        _say(str(error))
        return 126
    parent = spec.get("parent")
    if parent is not None and posix.getppid() != parent:
        # The server died before PDEATHSIG was armed (or started us through another process,
        # which the spec's "parent" does not allow).
        _say(f"the server (pid {parent}) is gone; not starting")
        return 128 + _signal.SIGTERM
    stopping: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopping.append(signum)
        _kill_children()

    for signum in STOP_SIGNALS:
        _signal.signal(signum, stop)
    child = posix.fork()
    if child == 0:
        _child(spec, args[3:])
    if stopping:
        _kill_children()
    status = _wait_for(child)
    _kill_tree()
    code = posix.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _wait_for(child: int) -> int:
    """Reap until ``child`` ends (orphans adopted meanwhile are reaped too); its wait status."""
    while True:
        pid, status = posix.waitpid(-1, 0)
        if pid == child:
            return status


def _kill_tree() -> None:
    """SIGKILL every child and reap, until none is left.

    Killing a child hands its own children to us (the subreaper) before it can be reaped, so
    each round sees the next generation. Should the listing miss a child (it changes while
    read), the round polls instead of blocking on a child nobody killed.
    """
    while True:
        killed = _kill_children()
        try:
            pid, _status = posix.waitpid(-1, 0 if killed else posix.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            posix.sched_yield()


def _kill_children() -> int:
    count = 0
    for pid in _children():
        try:
            posix.kill(pid, _signal.SIGKILL)
            count += 1
        except ProcessLookupError:
            pass
    return count


def _children() -> list[int]:
    """Our children's pids: the kernel's list, or a scan of ``/proc`` without
    CONFIG_PROC_CHILDREN."""
    me = posix.getpid()
    try:
        return [int(pid) for pid in _read(f"/proc/{me}/task/{me}/children").split()]
    except FileNotFoundError:
        pass
    found = []
    for name in posix.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = _read(f"/proc/{name}/stat")
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[1]) == me:
            found.append(int(name))
    return found


def _read(path: str) -> bytes:
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        chunks = [posix.read(fd, 65536)]
        while chunks[-1]:
            chunks.append(posix.read(fd, 65536))
        return b"".join(chunks)
    finally:
        posix.close(fd)


def _child(spec: dict[str, object], argv: list[str]) -> None:
    """Confine this process and exec ``argv``; never returns, never runs it unconfined."""
    try:
        for signum in (*STOP_SIGNALS, _signal.SIGPIPE, _signal.SIGXFSZ):
            _signal.signal(signum, _signal.SIG_DFL)  # Python ignores SIGPIPE and SIGXFSZ
        _restore_lc_ctype(spec)
        _limit(RLIMIT_CORE, 0)
        memory = spec.get("max_memory_mb")
        if memory is not None:
            _limit(RLIMIT_AS, int(memory) * 1024 * 1024)
        processes = spec.get("max_processes")
        if processes is not None:
            _limit(RLIMIT_NPROC, int(processes))
        _landlock(spec)
    except Exception as error:
        _say(f"landlock: {error}")
        posix._exit(126)
    try:
        _execvp(argv)
    except OSError as error:
        _say(f"{argv[0]}: {error.strerror}")
        posix._exit(127 if isinstance(error, FileNotFoundError) else 126)


def _execvp(argv: list[str]) -> None:
    """``os.execvp``, which is not loaded (and would lazily import ``warnings`` from a
    folder that confinement makes unreadable)."""
    name = argv[0]
    if "/" in name:
        posix.execv(name, argv)
    denied: OSError | None = None
    missing: OSError = FileNotFoundError(2, "No such file or directory")
    path = posix.environ.get(b"PATH", b"/bin:/usr/bin").decode(errors="surrogateescape")
    for folder in path.split(":"):
        try:
            posix.execv(f"{folder or '.'}/{name}", argv)
        except (FileNotFoundError, NotADirectoryError) as error:
            missing = error
        except OSError as error:
            denied = denied or error
    raise denied or missing


def _restore_lc_ctype(spec: dict[str, object]) -> None:
    """Undo PEP 538: under a C locale Python sets LC_CTYPE=C.UTF-8 in its own environment,
    which the command would inherit. The spec carries the value it should have."""
    if "lc_ctype" not in spec:
        return
    value = spec["lc_ctype"]
    if value is None:
        posix.unsetenv("LC_CTYPE")
    else:
        posix.putenv("LC_CTYPE", str(value))


def _limit(resource: int, value: int) -> None:
    """Soft and hard limit both, so the command cannot raise it back (never above the current
    hard limit, which an unprivileged process could not raise)."""
    limits = Rlimit()
    _check(_libc("getrlimit")(Long(resource), limits), "getrlimit")
    limits[0] = limits[1] = min(value, limits[1])
    _check(_libc("setrlimit")(Long(resource), limits), "setrlimit")


def _landlock(spec: dict[str, object]) -> None:
    syscall = _libc("syscall")
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
    abi = syscall(Long(SYS_CREATE_RULESET), None, Long(0), Long(CREATE_RULESET_VERSION))
    if abi < 1:
        raise OSError(f"not available in this kernel ({posix.strerror(_ctypes.get_errno())})")
    handled = FS_ABI1
    if abi >= 2:
        handled |= FS_REFER
    if abi >= 3:
        handled |= FS_TRUNCATE
    if abi >= 5:
        handled |= FS_IOCTL_DEV
    net = NET_TCP if abi >= 4 and not spec.get("network", True) else 0
    scoped = SCOPES if abi >= 6 else 0
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    attr = _u64(handled) + _u64(net) + _u64(scoped)
    ruleset = syscall(Long(SYS_CREATE_RULESET), attr[:size], Long(size), Long(0))
    _check(ruleset, "create_ruleset")
    for path in _paths(spec, "read"):
        _allow(syscall, ruleset, path, FS_READ & handled)
    for path in _paths(spec, "write"):
        _allow(syscall, ruleset, path, handled)
    _check(syscall(Long(SYS_RESTRICT_SELF), Long(ruleset), Long(0)), "restrict_self")
    posix.close(ruleset)


def _paths(spec: dict[str, object], key: str) -> list[str]:
    paths = spec.get(key) or []
    if not isinstance(paths, list):
        raise ValueError(f"spec {key!r} is not a list")
    return [str(path) for path in paths]


def _allow(syscall: _Function, ruleset: int, path: str, access: int) -> None:
    """A path-beneath rule; paths that are missing (or unreachable anyway) are skipped."""
    try:
        fd = posix.open(path, posix.O_PATH | posix.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    try:
        if posix.fstat(fd).st_mode & 0o170000 != 0o040000:  # not a directory
            access &= FS_FILE
        attr = _u64(access) + fd.to_bytes(4, sys.byteorder, signed=True)
        rule = syscall(Long(SYS_ADD_RULE), Long(ruleset), Long(RULE_PATH_BENEATH), attr, Long(0))
        _check(rule, path)
    finally:
        posix.close(fd)


def _prctl(option: int, value: int) -> int:
    zero = Long(0)
    return _libc("prctl")(Long(option), Long(value), zero, zero, zero)


def _u64(value: int) -> bytes:
    return value.to_bytes(8, sys.byteorder)


def _check(result: int, what: str) -> None:
    if result < 0:
        raise OSError(f"{what}: {posix.strerror(_ctypes.get_errno())}")


def _say(message: str) -> None:
    posix.write(2, f"{PREFIX}{message}\n".encode(errors="replace"))


if __name__ == "__main__":
    # _exit: nothing is buffered (stderr is written with posix.write), and a clean interpreter
    # shutdown costs ~2 ms.
    posix._exit(main(sys.argv))
