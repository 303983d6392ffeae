"""Per-command resource limits as a ``prlimit`` prefix (util-linux, on every Debian)."""

from __future__ import annotations

from openheim.config.sandbox_settings import Limits


def limit_argv(limits: Limits) -> list[str]:
    """``prlimit`` (util-linux) in front of the command when limits are set: rlimits are
    inherited through bwrap's exec, and no Python runs between fork and exec to set them.

    ``RLIMIT_NPROC`` counts per user, and the kernel does not apply it to root (even mapped
    into a user namespace): it limits only a server that runs as an ordinary user.
    """
    args = []
    if limits.max_memory_mb is not None:
        args.append(f"--as={limits.max_memory_mb * 1024 * 1024}")
    if limits.max_processes is not None:
        args.append(f"--nproc={limits.max_processes}")
    return ["prlimit", *args, "--core=0", "--"] if args else []
