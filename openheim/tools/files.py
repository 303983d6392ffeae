"""``read_file`` and ``write_file``.

Paths are relative to the session's working directory, with ``~`` expanded. They reach only what
the session's sandbox policy allows: reads the readable roots (or anything, in local mode),
writes the writable ones, never a hidden path. The disk is reached through the race-free
resolver (``openheim.sandbox.paths``), so a folder swapped for a symlink mid-call cannot lead
out either. A refused path is answered with the path as the model sent it.

When the session has a ``FileAccess`` (an ACP client that offers ``fs/*``), files are read and
written through it, so the model sees the editor's unsaved buffers; the path is still checked
against the policy first. The blocking file work runs in a worker thread so a slow disk never
stalls the trio loop. Reads are capped so one huge file cannot flood the model's context; writes
are atomic so a crash or a full disk never leaves a half-written file in place of a good one.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import trio

from openheim.foundation.fsutil import atomic_write_at
from openheim.foundation.models import FileDiff, Location, ToolDefinition, ToolResult
from openheim.sandbox.fileops import open_final, retrying
from openheim.sandbox.paths import (
    Access,
    Confinement,
    InvalidPath,
    Missing,
    PathRefused,
    Resolved,
)
from openheim.sandbox.policy import SandboxPolicy
from openheim.sandbox.quota import WorkspaceQuota
from openheim.sandbox.sandbox import unconfined
from openheim.tools.base import FileAccessError, ToolContext, ToolKind
from openheim.tools.common import (
    ArgumentError,
    absolute,
    as_sent,
    check_for_editor,
    optional_positive_int,
    os_error,
    refused,
    required_str,
    resolve_path,
)
from openheim.tools.textfile import NotText, file_diff, old_text_at

__all__ = ["ReadFileTool", "WriteFileTool", "cap_text", "read_text_sync", "resolve_path"]

_SNIFF_BYTES = 8 * 1024
_SKIP_CHUNK = 64 * 1024


# --- read_file ---------------------------------------------------------------------------------


@attrs.frozen
class _Slice:
    """Lines read from a file: raw bytes plus what the note to the model needs."""

    data: bytes
    first_line: int
    next_line: int  # the line after the last one shown (or partially shown)
    capped: bool  # stopped because of the byte cap, not the line limit or end of file
    partial_line: bool  # the one line shown did not fit and was cut


def _skip_lines(f: BinaryIO, count: int) -> int:
    """Skip ``count`` lines in bounded chunks (a line may be huge); return how many existed."""
    skipped = 0
    while skipped < count:
        chunk = f.readline(_SKIP_CHUNK)
        if not chunk:
            break
        if chunk.endswith(b"\n"):
            skipped += 1
        elif len(chunk) < _SKIP_CHUNK:  # a last line without a newline
            skipped += 1
            break
    return skipped


def _take_lines(f: BinaryIO, first_line: int, limit: int | None, max_bytes: int) -> _Slice:
    """Read up to ``limit`` lines, stopping before the total passes ``max_bytes``."""
    out = bytearray()
    taken = 0
    while limit is None or taken < limit:
        room = max_bytes - len(out)
        line = f.readline(room + 1)
        if not line:
            return _Slice(bytes(out), first_line, first_line + taken, False, False)
        if len(line) > room:
            if taken == 0:  # a single line longer than the cap: show what fits
                out += line[:room]
                return _Slice(bytes(out), first_line, first_line + 1, True, True)
            return _Slice(bytes(out), first_line, first_line + taken, True, False)
        out += line
        taken += 1
    return _Slice(bytes(out), first_line, first_line + taken, False, False)


def _decode(data: bytes, partial: bool) -> str | None:
    """UTF-8 text, or None if it is not; a cut line may end inside a character."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        return decoder.decode(data, final=not partial)
    except UnicodeDecodeError:
        return None


def _cap_note(piece: _Slice, total: str, max_bytes: int) -> str:
    if piece.partial_line:
        shown = f"line {piece.first_line} is longer than that and was cut"
    else:
        shown = f"showing lines {piece.first_line}-{piece.next_line - 1}"
    return (
        f"[... truncated at {max_bytes} bytes ({shown}; {total}). "
        f"Read further with offset={piece.next_line} and a limit.]"
    )


def read_text_sync(
    path: Path,
    offset: int,
    limit: int | None,
    max_bytes: int,
    policy: SandboxPolicy | None = None,
    shown: str | None = None,
) -> ToolResult:
    """Blocking body of ``read_file``; run it in a worker thread. ``policy`` (unconfined if
    None) bounds what may be read: raises ``PathRefused`` or ``InvalidPath`` outside it.
    Messages name the file as ``shown`` (the path as the model sent it), else ``path``."""
    confinement = Confinement.of(policy or unconfined().policy, Access.READ)
    name = str(path) if shown is None else shown
    try:
        return retrying(
            confinement,
            absolute(path),
            lambda resolved: _read_at(resolved, name, offset, limit, max_bytes),
        )
    except OSError as exc:
        return os_error("read", name, exc)


def _read_at(
    resolved: Resolved, path: str, offset: int, limit: int | None, max_bytes: int
) -> ToolResult:
    # O_NONBLOCK: opening a FIFO must not hang the thread; it is refused just below.
    fd = open_final(resolved, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if stat.S_ISDIR(info.st_mode):
            return ToolResult(f"{path} is a directory, not a file", is_error=True)
        if not stat.S_ISREG(info.st_mode):
            return ToolResult(f"{path} is not a regular file", is_error=True)
        if b"\0" in f.read(_SNIFF_BYTES):
            return _binary(path, info.st_size)
        f.seek(0)
        skipped = _skip_lines(f, offset - 1)
        piece = _take_lines(f, offset, limit, max_bytes)
    if not piece.data and offset > 1:
        return ToolResult(f"[offset {offset} is past the end: {path} has {skipped} lines]")
    text = _decode(piece.data, piece.partial_line)
    if text is None:
        return _binary(path, info.st_size)
    if not text and offset == 1:
        return ToolResult("(empty file)")
    if piece.capped:
        if text and not text.endswith("\n"):
            text += "\n"
        text += _cap_note(piece, f"the file has {info.st_size} bytes", max_bytes)
    return ToolResult(text)


def cap_text(text: str, path: str, offset: int, max_bytes: int) -> ToolResult:
    """Text another party read for us (an ACP client), capped as a disk read would be."""
    if not text:
        if offset == 1:
            return ToolResult("(empty file)")
        return ToolResult(f"[offset {offset} is past the end of {path}]")
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return ToolResult(text)
    piece = _take_lines(io.BytesIO(data), offset, None, max_bytes)
    shown = _decode(piece.data, piece.partial_line) or ""
    if shown and not shown.endswith("\n"):
        shown += "\n"
    total = f"{len(data)} bytes from line {offset} on" if offset > 1 else f"{len(data)} bytes"
    return ToolResult(shown + _cap_note(piece, f"the editor sent {total}", max_bytes))


def _binary(path: str, size: int) -> ToolResult:
    return ToolResult(f"{path}: binary file, {size} bytes; not shown", is_error=True)


class ReadFileTool:
    """The ``read_file`` tool: UTF-8 text, optionally a range of lines, capped in bytes."""

    kind = ToolKind.READ

    def __init__(self, max_bytes: int = 256 * 1024) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._definition = ToolDefinition(
            name="read_file",
            description=(
                "Read a UTF-8 text file. Relative paths are resolved against the working "
                "directory; `~` is expanded. Returns the file's text (or the lines asked for "
                f"with `offset` and `limit`), cut at {max_bytes} bytes with a note telling how "
                "to read on. Binary files are not shown."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File to read."},
                    "offset": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "First line to read, 1-based (default 1).",
                    },
                    "limit": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "How many lines to read (default: to the end or the cap).",
                    },
                },
                "required": ["path"],
            },
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            raw = required_str(arguments, "path")
            offset = optional_positive_int(arguments, "offset")
            limit = optional_positive_int(arguments, "limit")
        except ArgumentError as exc:
            return ToolResult(str(exc), is_error=True)
        path = resolve_path(raw, context.cwd)
        policy = context.sandbox.policy
        if context.files is not None:
            denied = await check_for_editor(raw, path, Access.READ, policy)
            if denied is not None:
                return denied
            try:
                text = await context.files.read_text(path, offset, limit)
            except NotImplementedError:
                pass  # this client does not read files: use the disk
            except FileAccessError as exc:
                return ToolResult(f"Cannot read {as_sent(raw)}: {exc}", is_error=True)
            else:
                return cap_text(text, as_sent(raw), offset or 1, self.max_bytes)
        # Abandon on cancel: a read changes nothing, and a hung network disk must not wedge it.
        try:
            return await trio.to_thread.run_sync(
                read_text_sync,
                path,
                offset or 1,
                limit,
                self.max_bytes,
                policy,
                as_sent(raw),
                abandon_on_cancel=True,
            )
        except PathRefused:
            return refused(raw, Access.READ, policy)
        except InvalidPath as exc:
            return ToolResult(f"Invalid path {as_sent(raw)}: {exc}", is_error=True)


# --- write_file --------------------------------------------------------------------------------


def write_text_sync(
    path: Path,
    content: str,
    policy: SandboxPolicy | None = None,
    quota: WorkspaceQuota | None = None,
    shown: str | None = None,
) -> ToolResult:
    """Blocking body of ``write_file``; run it in a worker thread. ``policy`` (unconfined if
    None) bounds what may be written: raises ``PathRefused`` or ``InvalidPath`` outside it.
    Missing parent folders are created; a symlink inside the policy is written through.
    Messages name the file as ``shown`` (the path as the model sent it), else ``path``."""
    data = content.encode("utf-8")
    name = str(path) if shown is None else shown
    confinement = Confinement.of(policy or unconfined().policy, Access.WRITE)
    diffs: tuple[FileDiff, ...] = ()

    def write(resolved: Resolved) -> None:
        nonlocal diffs
        try:
            diffs = file_diff(str(path), old_text_at(resolved), content)
        except (NotText, OSError):
            diffs = ()  # nothing a client could diff; the write itself decides what fails
        if quota is not None:
            quota.reserve(resolved.dir_fd, resolved.name, len(data))
        atomic_write_at(resolved.dir_fd, resolved.name, data, shown=name)

    try:
        retrying(confinement, absolute(path), write, missing=Missing.CREATE)
    except OSError as exc:
        return os_error("write", name, exc)
    return ToolResult(
        f"Wrote {len(data)} bytes to {name}", diffs=diffs, locations=(Location(str(path)),)
    )


class WriteFileTool:
    """The ``write_file`` tool: create or replace a whole file, atomically."""

    kind = ToolKind.EDIT

    def __init__(self) -> None:
        self._definition = ToolDefinition(
            name="write_file",
            description=(
                "Write text to a file, replacing it whole if it exists and creating it and its "
                "parent directories if not. Relative paths are resolved against the working "
                "directory; `~` is expanded. The replacement is atomic and keeps the file's "
                "permissions."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File to write."},
                    "content": {"type": "string", "description": "The file's complete new text."},
                },
                "required": ["path", "content"],
            },
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            raw = required_str(arguments, "path")
            content = required_str(arguments, "content", allow_empty=True)
        except ArgumentError as exc:
            return ToolResult(str(exc), is_error=True)
        path = resolve_path(raw, context.cwd)
        policy = context.sandbox.policy
        if context.files is not None:
            denied = await check_for_editor(raw, path, Access.WRITE, policy)
            if denied is not None:
                return denied
            # No diff: asking the editor for the old text first would cost a round trip on
            # every write, and the editor shows its own buffer's changes anyway.
            try:
                await context.files.write_text(path, content)
            except NotImplementedError:
                pass  # this client does not write files: use the disk
            except FileAccessError as exc:
                return ToolResult(f"Cannot write {as_sent(raw)}: {exc}", is_error=True)
            else:
                return ToolResult(
                    f"Wrote {len(content.encode('utf-8'))} bytes to {as_sent(raw)}",
                    locations=(Location(str(path)),),
                )
        # Not abandoned on cancel: the thread must finish so no temp file is left behind.
        try:
            return await trio.to_thread.run_sync(
                write_text_sync, path, content, policy, context.sandbox.quota, as_sent(raw)
            )
        except PathRefused:
            return refused(raw, Access.WRITE, policy)
        except InvalidPath as exc:
            return ToolResult(f"Invalid path {as_sent(raw)}: {exc}", is_error=True)
