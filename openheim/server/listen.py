"""The listening sockets of ``serve --workers N``, made by the parent before any worker starts.

Each worker gets a socket of its own, all bound to one port with ``SO_REUSEPORT``, so the
kernel spreads new connections evenly over the workers (a single shared socket wakes every
worker for each connection and lets whoever is quickest take most of them). The parent keeps
its copies open: a crashed worker's socket keeps queueing connections until the replacement,
which gets the same socket, accepts them. Without ``SO_REUSEPORT`` every worker shares one
socket, which is correct, only less even.
"""

from __future__ import annotations

import os
import socket

#: Connections the kernel queues per socket before the worker accepts them (hypercorn's default).
BACKLOG = 100


def worker_count(value: str) -> int:
    """``--workers``: a positive number, or ``auto`` for one per core this process may use."""
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"--workers must be a positive number or auto, not {value!r}")
    return count


def _listening(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def open_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on ``host:port`` (port 0: the first one picks it), one per
    worker; or one socket ``count`` times where ``SO_REUSEPORT`` is missing. Raises
    ``OSError`` when the address cannot be bound."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return [_listening(host, port, reuse_port=False)] * count
    first = _listening(host, port, reuse_port=True)
    sockets = [first]
    try:
        bound = first.getsockname()[1]
        sockets += [_listening(host, bound, reuse_port=True) for _ in range(count - 1)]
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
