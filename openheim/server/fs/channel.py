"""The ``fs`` channel of ``/ws``: file CRUD and change notifications inside a tenant's root.

Wire format (openheim 0.1.x's, which frontends speak): requests ``{"action": ...}``, responses and
events ``{"type": ...}``. Every path is confined to the tenant's workspace root, race-free
(``fs_paths`` does the blocking file work on folder fds held from the root down); relative paths
resolve against the root, and every action works without a prior ``watch`` (as in openheim 0.5.0).
``watch {path}`` picks the folder to watch, which must be an existing directory inside the
root; one watch per connection, a new one replaces it.

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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from openheim.foundation.errors import ClientError
from openheim.sandbox.quota import WorkspaceQuota
from openheim.server.fs.paths import (
    OUTSIDE_MESSAGE,
    FsError,
    delete_sync,
    fail_reason,
    list_sync,
    mkdir_sync,
    read_sync,
    rename_sync,
    watch_target_sync,
    write_sync,
)
from openheim.server.fs.watcher import FsWatcher

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


class InvalidPayload(ClientError):
    """A request we cannot understand; the reply still echoes its ``id`` if that was valid."""

    def __init__(self, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
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


# --- the channel --------------------------------------------------------------------------------


class FsChannel:
    """One connection's fs channel: confined CRUD plus at most one watcher (see module doc)."""

    def __init__(
        self,
        root: Path,
        send: Send,
        nursery: trio.Nursery,
        limits: FsLimits | None = None,
        quota: WorkspaceQuota | None = None,
    ) -> None:
        self.root = Path(root)
        self.limits = limits or FsLimits()
        #: The tenant's workspace quota: writes reserve their size in it first.
        self.quota = quota
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
                limits = self.limits
                return await self._run(
                    list_sync, path, recursive, limits.max_list_depth, limits.max_list_entries
                )
            case Read(path):
                content = await self._run(read_sync, path, self.limits.max_read_bytes)
                return {"type": "file_content", "path": path, "content": content}
            case Write(path, content):
                await self._run(write_sync, path, content, self.quota)
                return {"type": "write_success", "path": path}
            case Mkdir(path):
                await self._run(mkdir_sync, path)
                return {"type": "mkdir_success", "path": path}
            case Delete(path):
                await self._run(delete_sync, path)
                if self.quota is not None:  # the room it freed counts at once
                    await trio.to_thread.run_sync(self.quota.measure)
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
            reason = fail_reason(exc) if isinstance(exc, OSError) else str(exc)
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
