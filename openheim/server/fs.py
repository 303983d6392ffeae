"""The ``fs`` channel of ``/ws``: file CRUD and change notifications inside a tenant's root.

Wire format (openheim 0.1.x's, which frontends speak): requests ``{"action": ...}``, responses and
events ``{"type": ...}``. Every path is confined to the tenant's workspace root
(``fs_paths``); relative paths resolve against the root, and every action works without a
prior ``watch`` (as in openheim 0.5.0). ``watch {path}`` picks the folder to watch, which must
be an existing directory inside the root; one watch per connection, a new one replaces it.

Our compatible additions: a request's ``id`` (string or number) is echoed in its response;
``file_list`` carries ``"truncated": true`` when a listing hit ``FsLimits.max_list_entries``
or ``max_list_depth``; ``fs_event`` may carry ``event_kind: "Other"`` (rescan) when a slow
client made the watcher drop changes (``watcher``). ``rename`` refuses an existing destination
(openheim replaced it silently): a file tree UI should not lose a file to a mistyped name.

API for the server core::

    channel = FsChannel(root, send, nursery)   # send(dict) -> awaitable; nursery = connection's
    await channel.handle(data)                 # one request (an envelope's ``data``); never
                                               # raises for bad input: errors go through send
    await channel.serve(receive_channel)       # or: handle each request in arrival order
    await channel.close()                      # stops the watcher (serve does it on exit)

The caller wraps every dict it is sent as ``{"channel": "fs", "data": ...}``. ``send`` is
called by the request handler and by the watcher task, possibly concurrently (a
``trio.MemorySendChannel.send`` is fine); when it blocks, the fs channel waits (backpressure).
Requests are handled one at a time, so responses keep the order of requests, as openheim's
clients expect; run ``serve`` in its own task, fed by a bounded channel, so slow file work never
stalls the WebSocket reader. Blocking file work runs in worker threads.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import stat
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from openheim.fsutil import atomic_write
from openheim.server.fs_paths import (
    OUTSIDE_MESSAGE,
    FsError,
    is_within,
    real_root,
    resolve,
    resolve_entry,
)
from openheim.server.watcher import FsWatcher

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
RequestId = str | int | float


def greeting() -> dict[str, Any]:
    """What openheim sends on ``fs`` right after the WebSocket opens."""
    return {"type": "connected", "message": "Connected to Openheim"}


def frame_error(message: str) -> dict[str, Any]:
    """A frame the server could not route (bad JSON, unknown channel); the connection stays."""
    return {"type": "error", "message": f"Invalid payload: {message}"}


def error(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}


@attrs.frozen
class FsLimits:
    """Bounds on one request's work; openheim had none (a recursive list of ``/`` ran away)."""

    max_list_entries: int = 10_000
    max_list_depth: int = 32
    max_read_bytes: int = 8 * 1024 * 1024
    watch_debounce_ms: int = 500
    watch_step_ms: int = 50
    max_pending_events: int = 1024


# --- requests: parsing is pure ------------------------------------------------------------------


@attrs.frozen
class Watch:
    path: str


@attrs.frozen
class Unwatch:
    pass


@attrs.frozen
class ListDir:
    path: str
    recursive: bool = False


@attrs.frozen
class Read:
    path: str


@attrs.frozen
class Write:
    path: str
    content: str


@attrs.frozen
class Mkdir:
    path: str


@attrs.frozen
class Delete:
    path: str


@attrs.frozen
class Rename:
    from_: str
    to: str


Request = Watch | Unwatch | ListDir | Read | Write | Mkdir | Delete | Rename

_ACTIONS = ("watch", "unwatch", "list", "read", "write", "mkdir", "delete", "rename")


class InvalidPayload(Exception):
    """A request we cannot understand; the reply still echoes its ``id`` if that was valid."""

    def __init__(self, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


def _request_id(data: dict[str, Any]) -> RequestId | None:
    value = data.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidPayload("invalid type for `id`: expected a string or a number")
    if isinstance(value, float) and not math.isfinite(value):  # NaN, 1e400: no JSON number
        raise InvalidPayload("invalid type for `id`: expected a string or a number")
    return value


def _field(data: dict[str, Any], name: str, request_id: RequestId | None) -> str:
    if name not in data:
        raise InvalidPayload(f"missing field `{name}`", request_id)
    value = data[name]
    if not isinstance(value, str):
        raise InvalidPayload(f"invalid type for `{name}`: expected a string", request_id)
    return value


def parse_request(data: Any) -> tuple[Request, RequestId | None]:
    """A typed request and its ``id`` from an envelope's ``data``; raises ``InvalidPayload``."""
    if not isinstance(data, dict):
        raise InvalidPayload("expected a JSON object with an `action`")
    request_id = _request_id(data)
    if "action" not in data:
        raise InvalidPayload("missing field `action`", request_id)
    action = data["action"]
    if not isinstance(action, str) or action not in _ACTIONS:
        expected = ", ".join(f"`{a}`" for a in _ACTIONS)
        shown = f"`{action}`" if isinstance(action, str) else "of the wrong type"
        raise InvalidPayload(f"unknown action {shown}, expected one of {expected}", request_id)
    request: Request
    match action:
        case "watch":
            request = Watch(_field(data, "path", request_id))
        case "unwatch":
            request = Unwatch()
        case "list":
            recursive = data.get("recursive", False)
            if recursive is None:
                recursive = False
            if not isinstance(recursive, bool):
                raise InvalidPayload("invalid type for `recursive`: expected a boolean", request_id)
            request = ListDir(_field(data, "path", request_id), recursive)
        case "read":
            request = Read(_field(data, "path", request_id))
        case "write":
            request = Write(_field(data, "path", request_id), _field(data, "content", request_id))
        case "mkdir":
            request = Mkdir(_field(data, "path", request_id))
        case "delete":
            request = Delete(_field(data, "path", request_id))
        case _:
            request = Rename(_field(data, "from", request_id), _field(data, "to", request_id))
    return request, request_id


def with_id(response: dict[str, Any], request_id: RequestId | None) -> dict[str, Any]:
    return response if request_id is None else {**response, "id": request_id}


# --- blocking operations: run them in a worker thread -------------------------------------------


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _entry(root: str, item: os.DirEntry[str]) -> tuple[dict[str, Any], bool]:
    """A FileEntry, and whether to descend into it (real directories only, never symlinks)."""
    info = item.stat(follow_symlinks=False)
    descend = stat.S_ISDIR(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        try:  # describe what the link points to, when that is inside the root
            if is_within(root, os.path.realpath(item.path)):
                info = os.stat(item.path)
        except OSError:
            pass
    is_dir = stat.S_ISDIR(info.st_mode)
    entry: dict[str, Any] = {"path": item.path, "name": item.name, "is_dir": is_dir}
    if not is_dir:
        entry["size"] = info.st_size
    entry["modified"] = int(info.st_mtime)
    return entry, descend


def _is_dir(path: Path) -> bool:
    """``Path.is_dir``, except that a path the OS refuses to look at (a name too long) is no
    directory either, instead of an error."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def list_sync(root: Path, requested: str, recursive: bool, limits: FsLimits) -> dict[str, Any]:
    """Breadth first, so a truncated listing still shows the top levels; sorted in tree order."""
    base = real_root(root)
    target = resolve(root, requested)
    if not _is_dir(target):
        raise FsError(f"Invalid directory: {requested}")
    max_depth = limits.max_list_depth if recursive else 1
    entries: list[dict[str, Any]] = []
    full = too_deep = False
    queue: deque[tuple[str, int]] = deque([(str(target), 1)])
    while queue and not full:
        directory, depth = queue.popleft()
        try:
            with os.scandir(directory) as items:
                for item in items:
                    if len(entries) >= limits.max_list_entries:
                        full = True
                        break
                    try:
                        entry, descend = _entry(base, item)
                    except OSError:
                        continue  # vanished while listing
                    entries.append(entry)
                    if descend and recursive:
                        if depth < max_depth:
                            queue.append((item.path, depth + 1))
                        else:
                            too_deep = True
        except OSError as exc:
            if depth == 1:
                raise FsError(f"Failed to read dir: {_reason(exc)}") from exc
            # an unreadable subfolder is left out; the rest of the listing is still useful
    entries.sort(key=lambda e: e["path"].split(os.sep))
    response: dict[str, Any] = {"type": "file_list", "path": requested, "entries": entries}
    if full or too_deep:
        response["truncated"] = True
    return response


def read_sync(root: Path, requested: str, max_bytes: int) -> str:
    target = resolve(root, requested)
    try:
        # O_NONBLOCK: opening a FIFO must not hang the thread; it is refused just below.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise FsError("Failed to read: Is a directory")
            if not stat.S_ISREG(info.st_mode):
                raise FsError("Failed to read: not a regular file")
            size = info.st_size
            data = f.read(max_bytes + 1) if size <= max_bytes else b""
            if size > max_bytes or len(data) > max_bytes:  # it may grow while we read
                size = max(size, len(data))
                raise FsError(f"Failed to read: file too large ({size} bytes, limit {max_bytes})")
    except OSError as exc:
        raise FsError(f"Failed to read: {_reason(exc)}") from exc
    if b"\0" in data:
        raise FsError("Failed to read: binary file, not UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FsError("Failed to read: binary file, not UTF-8 text") from None


def write_sync(root: Path, requested: str, content: str) -> None:
    target = resolve(root, requested)
    try:
        data = content.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800"
        raise FsError("Failed to write: content is not valid Unicode") from None
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise FsError(f"Failed to write: {_reason(exc)}") from exc


def mkdir_sync(root: Path, requested: str) -> None:
    target = resolve(root, requested)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FsError(f"Failed to mkdir: {_reason(exc)}") from exc


def delete_sync(root: Path, requested: str) -> None:
    """A file or a link is unlinked; a folder goes with its contents (rmtree never follows a
    link out)."""
    entry = resolve_entry(root, requested)
    if str(entry) == real_root(root):
        raise FsError("Cannot delete the workspace root")
    try:
        is_dir = stat.S_ISDIR(os.lstat(entry).st_mode)
    except OSError as exc:
        raise FsError(f"Failed to delete file: {_reason(exc)}") from exc
    if is_dir:
        try:
            shutil.rmtree(entry)
        except OSError as exc:
            raise FsError(f"Failed to delete dir: {_reason(exc)}") from exc
    else:
        try:
            os.unlink(entry)
        except OSError as exc:
            raise FsError(f"Failed to delete file: {_reason(exc)}") from exc


def rename_sync(root: Path, source: str, destination: str) -> None:
    """Moves the entry itself (a link stays a link); an existing destination is refused."""
    src = resolve_entry(root, source)
    dst = resolve_entry(root, destination)
    base = real_root(root)
    if base in (str(src), str(dst)):
        raise FsError("Cannot rename the workspace root")
    try:
        src_info = os.lstat(src)
        try:
            dst_info: os.stat_result | None = os.lstat(dst)
        except FileNotFoundError:
            dst_info = None
        # Same entry under another spelling (a case-only rename on a case-insensitive disk).
        if dst_info is not None and not os.path.samestat(src_info, dst_info):
            raise FsError("Failed to rename: destination already exists")
        os.rename(src, dst)
    except OSError as exc:
        raise FsError(f"Failed to rename: {_reason(exc)}") from exc


def watch_target_sync(root: Path, requested: str) -> tuple[str, str]:
    """The real root and the real folder to watch, which must be a directory inside it."""
    target = resolve(root, requested)
    if not _is_dir(target):
        raise FsError(f"Invalid directory: {requested}")
    return real_root(root), str(target)


# --- the channel --------------------------------------------------------------------------------


class FsChannel:
    """One connection's fs channel: confined CRUD plus at most one watcher (see module doc)."""

    def __init__(
        self, root: Path, send: Send, nursery: trio.Nursery, limits: FsLimits | None = None
    ) -> None:
        self.root = Path(root)
        self.limits = limits or FsLimits()
        self._send = send
        self._nursery = nursery
        self._watcher: FsWatcher | None = None

    async def handle(self, data: Any) -> None:
        """Answer one request through ``send``; bad input gets an ``error`` reply, not a raise."""
        try:
            request, request_id = parse_request(data)
        except InvalidPayload as exc:
            await self._send(with_id(frame_error(exc.message), exc.request_id))
            return
        try:
            response = await self._execute(request)
        except FsError as exc:
            response = error(exc.message)
        except Exception:
            log.exception("fs request %r failed", type(request).__name__)
            response = error("Internal error")
        await self._send(with_id(response, request_id))

    async def serve(self, requests: trio.MemoryReceiveChannel[Any]) -> None:
        """Handle requests in arrival order until the channel closes; then stop the watcher."""
        try:
            async with requests:
                async for data in requests:
                    await self.handle(data)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.close()

    async def close(self) -> None:
        """Stop the watcher, if any; no ``fs_event`` is sent after this returns."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.stop()

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(functools.partial(fn, self.root, *args))

    async def _execute(self, request: Request) -> dict[str, Any]:
        match request:
            case Watch(path):
                await self._watch(path)
                return {"type": "watching", "path": path}
            case Unwatch():
                await self.close()
                return {"type": "unwatched"}
            case ListDir(path, recursive):
                return await self._run(list_sync, path, recursive, self.limits)
            case Read(path):
                content = await self._run(read_sync, path, self.limits.max_read_bytes)
                return {"type": "file_content", "path": path, "content": content}
            case Write(path, content):
                await self._run(write_sync, path, content)
                return {"type": "write_success", "path": path}
            case Mkdir(path):
                await self._run(mkdir_sync, path)
                return {"type": "mkdir_success", "path": path}
            case Delete(path):
                await self._run(delete_sync, path)
                return {"type": "delete_success", "path": path}
            case Rename(source, destination):
                await self._run(rename_sync, source, destination)
                return {"type": "rename_success", "from": source, "to": destination}
        raise AssertionError(f"unhandled request {request!r}")  # pragma: no cover

    async def _watch(self, path: str) -> None:
        root, folder = await self._run(watch_target_sync, path)
        await self.close()  # one watch per connection: the old one ends before the new starts
        watcher = FsWatcher(
            root,
            folder,
            self._send,
            debounce_ms=self.limits.watch_debounce_ms,
            step_ms=self.limits.watch_step_ms,
            max_pending=self.limits.max_pending_events,
        )
        try:
            await self._nursery.start(watcher.run)
        except (OSError, RuntimeError) as exc:  # watchfiles' internal errors are RuntimeErrors
            reason = _reason(exc) if isinstance(exc, OSError) else str(exc)
            raise FsError(f"Failed to create watcher: {reason}") from exc
        except UnicodeEncodeError:  # watchfiles takes UTF-8 paths only
            raise FsError("Failed to create watcher: the folder's name is not UTF-8") from None
        self._watcher = watcher


__all__ = [
    "OUTSIDE_MESSAGE",
    "FsChannel",
    "FsError",
    "FsLimits",
    "InvalidPayload",
    "frame_error",
    "greeting",
    "parse_request",
]
