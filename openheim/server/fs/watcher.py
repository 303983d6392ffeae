"""The fs watcher actor: pushes ``fs_event`` notifications for one watched folder.

watchfiles does the watching (its Rust ``notify`` backend: inotify, FSEvents, ...) and the
debouncing: a batch is handed over once changes stop for ``step_ms`` or ``debounce_ms`` has
passed since the first. We drive its ``RustNotify`` directly instead of ``awatch``: ``awatch``
blocks one worker thread per watcher on anyio's default limiter, which under trio is trio's
global one (40 threads), so forty idle watchers would starve every other ``to_thread`` call.
Here each watcher has its own one-thread limiter and the number of watchers per process is
capped (``MAX_WATCHERS``). Stopping sets watchfiles' stop event, so the thread returns within
``step_ms`` and cancellation is prompt.

Events use the names openheim's Rust ``notify`` produced, in its ``event_kind`` field:
``Create(File)``, ``Create(Folder)``, ``Modify(Data(Any))``, ``Remove(Any)``, one event per kind
and batch with the sorted absolute ``paths``. A path created and removed within one batch (an
atomic write's temp file) is not reported. Changes reached through a symlink that leads out of
the workspace root are dropped: watchfiles follows symlinked folders.

Slow clients: the collector keeps draining watchfiles while the sender waits on ``send``, and
coalesces into one pending entry per path (the latest kind wins, except that a pending
``Create`` stays a ``Create``). When more than ``max_pending`` distinct paths pile up, they are
dropped and a single ``{"event_kind": "Other", "paths": [<watched folder>]}`` is sent instead:
notify's own "rescan" signal, telling the client to list the folder again. Memory stays bounded
however fast the disk changes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
import trio
from watchfiles import Change
from watchfiles._rust_notify import RustNotify

from openheim.server.fs.paths import FsError, is_within

log = logging.getLogger(__name__)

CREATE_FILE = "Create(File)"
CREATE_FOLDER = "Create(Folder)"
MODIFY = "Modify(Data(Any))"
REMOVE = "Remove(Any)"
RESCAN = "Other"
_EMIT_ORDER = (REMOVE, CREATE_FOLDER, CREATE_FILE, MODIFY)
_CREATES = (CREATE_FILE, CREATE_FOLDER)

MAX_WATCHERS = 128  # inotify allows 128 instances per user by default
_TIMEOUT_MS = 5_000  # how often the thread wakes when nothing happens; stop does not wait for it

Send = Callable[[dict[str, Any]], Awaitable[None]]


def fs_event(kind: str, paths: list[str]) -> dict[str, Any]:
    """One notification, shaped as openheim sends it."""
    return {"type": "fs_event", "event_kind": kind, "paths": paths}


@attrs.frozen
class PathState:
    """What the watcher needs to know about a changed path, now."""

    inside: bool  # its real location is within the workspace root
    exists: bool
    is_dir: bool


def classify_batch(
    raw: Iterable[tuple[int, str]], probe: Callable[[str], PathState]
) -> list[tuple[str, str]]:
    """Turn one watchfiles batch into ``(event_kind, path)`` pairs, sorted by path.

    A batch is a set, so the order of a path's changes within it is lost; the path's state now
    decides: gone means removed, present after an add or a delete means (re)created.
    """
    changes: dict[str, set[int]] = {}
    for change, path in raw:
        changes.setdefault(path, set()).add(change)
    out: list[tuple[str, str]] = []
    for path in sorted(changes):
        kinds = changes[path]
        state = probe(path)
        if not state.inside:
            continue
        if Change.deleted in kinds and not state.exists:
            if Change.added not in kinds:  # added and deleted again: transient, never seen
                out.append((REMOVE, path))
        elif Change.added in kinds or Change.deleted in kinds:
            out.append((CREATE_FOLDER if state.is_dir else CREATE_FILE, path))
        else:
            out.append((MODIFY, path))
    return out


def probe_path(root: str, path: str) -> PathState:
    """The real ``PathState`` of ``path``; blocking, call it from the watcher's thread."""
    if not is_within(root, os.path.realpath(path)):
        return PathState(inside=False, exists=False, is_dir=False)
    try:
        info = os.lstat(path)
    except OSError:
        return PathState(inside=True, exists=False, is_dir=False)
    return PathState(inside=True, exists=True, is_dir=stat.S_ISDIR(info.st_mode))


class EventBuffer:
    """Changes waiting for a slow client, at most ``max_paths`` of them (see the module doc)."""

    def __init__(self, rescan_path: str, max_paths: int) -> None:
        if max_paths < 1:
            raise ValueError("max_paths must be positive")
        self._rescan_path = rescan_path
        self._max_paths = max_paths
        self._pending: dict[str, str] = {}
        self._overflow = False

    def __bool__(self) -> bool:
        return self._overflow or bool(self._pending)

    def add(self, kind: str, path: str) -> None:
        if self._overflow:
            return
        previous = self._pending.get(path)
        if previous is None and len(self._pending) >= self._max_paths:
            self._pending.clear()
            self._overflow = True
            return
        if previous in _CREATES and kind == MODIFY:
            return
        self._pending[path] = kind

    def take(self) -> list[dict[str, Any]]:
        """The events to send now, emptying the buffer."""
        if self._overflow:
            events = [fs_event(RESCAN, [self._rescan_path])]
        else:
            by_kind: dict[str, list[str]] = {}
            for path, kind in self._pending.items():
                by_kind.setdefault(kind, []).append(path)
            events = [fs_event(k, sorted(by_kind[k])) for k in _EMIT_ORDER if k in by_kind]
        self._pending = {}
        self._overflow = False
        return events


@attrs.define
class _Slots:
    """Watchers alive in this trio run; each holds an inotify instance and two threads."""

    limit: int
    used: int = 0


_SLOTS: trio.lowlevel.RunVar[_Slots] = trio.lowlevel.RunVar("openheim_fs_watchers")


def _slots() -> _Slots:
    try:
        return _SLOTS.get()
    except LookupError:
        slots = _Slots(MAX_WATCHERS)
        _SLOTS.set(slots)
        return slots


class FsWatcher:
    """Watches ``folder`` (recursively) and sends ``fs_event`` dicts through ``send``.

    ``root`` and ``folder`` are real paths, ``folder`` inside ``root``. Start it with
    ``await nursery.start(watcher.run)``: ``start`` returns once the watch is in place (so no
    change after the ``watching`` reply is missed) and raises ``OSError`` or ``FsError`` if it
    cannot be. ``stop`` ends it and waits until it has; so does cancelling its nursery.
    """

    def __init__(
        self,
        root: str,
        folder: str,
        send: Send,
        *,
        debounce_ms: int = 500,
        step_ms: int = 50,
        max_pending: int = 1024,
        force_polling: bool = False,
    ) -> None:
        self.root = root
        self.folder = folder
        self._send = send
        self._debounce_ms = debounce_ms
        self._step_ms = step_ms
        self._force_polling = force_polling
        self._buffer = EventBuffer(folder, max_pending)
        self._cancel_scope = trio.CancelScope()
        self._done = trio.Event()
        self._stop_thread = threading.Event()
        self._thread_limiter = trio.CapacityLimiter(1)
        self._wake_send, self._wake_receive = trio.open_memory_channel[None](1)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with self._cancel_scope:
                slots = _slots()
                if slots.used >= slots.limit:
                    raise FsError("Failed to create watcher: too many watchers")
                slots.used += 1
                try:
                    notify = await trio.to_thread.run_sync(self._open, limiter=self._thread_limiter)
                    try:
                        task_status.started()
                        await self._serve(notify)
                    finally:
                        notify.close()  # the thread has returned: to_thread never abandons it
                finally:
                    slots.used -= 1
        finally:
            self._done.set()

    async def stop(self) -> None:
        """End the watch; once this returns, no further event is sent."""
        self._cancel_scope.cancel()
        await self._done.wait()

    def _open(self) -> RustNotify:
        return RustNotify([self.folder], False, self._force_polling, 300, True, True)

    async def _serve(self, notify: RustNotify) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stop_thread_on_cancel)
                nursery.start_soon(self._deliver)
                await self._collect(notify)
                nursery.cancel_scope.cancel()
        except* (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # the connection's outbound side is gone; so is our reason to watch

    async def _stop_thread_on_cancel(self) -> None:
        """Cancellation cannot interrupt a thread; watchfiles' stop event can, within a step."""
        try:
            await trio.sleep_forever()
        finally:
            self._stop_thread.set()

    async def _collect(self, notify: RustNotify) -> None:
        while True:
            try:
                batch = await trio.to_thread.run_sync(
                    self._next_batch, notify, limiter=self._thread_limiter
                )
            except (OSError, RuntimeError) as exc:
                log.warning("watcher on %s failed: %s", self.folder, exc)
                await self._send({"type": "error", "message": f"Watcher error: {exc}"})
                return
            if batch is None:
                return
            for kind, path in batch:
                self._buffer.add(kind, path)
            # A wake-up already pending is enough: the sender takes everything at once.
            if self._buffer:
                with contextlib.suppress(trio.WouldBlock):
                    self._wake_send.send_nowait(None)

    def _next_batch(self, notify: RustNotify) -> list[tuple[str, str]] | None:
        """Blocking: the next non-empty classified batch, or None once stopped."""
        while True:
            raw = notify.watch(self._debounce_ms, self._step_ms, _TIMEOUT_MS, self._stop_thread)
            if raw == "stop":
                return None
            if isinstance(raw, set):
                batch = classify_batch(raw, lambda path: probe_path(self.root, path))
                if batch:
                    return batch

    async def _deliver(self) -> None:
        async for _ in self._wake_receive:
            for event in self._buffer.take():
                await self._send(event)
