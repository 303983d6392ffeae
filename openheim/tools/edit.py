"""``edit_file``: exact-string replacements in one file, all or nothing, answered with a diff.

The file is read, edited and written back inside one resolution of its path (the race-free
resolver of ``openheim.sandbox.paths``), so what is written is exactly what was read plus the
edits, in the file the policy allowed. With an editor's ``FileAccess`` the buffer is edited
instead (its unsaved text, its undo history).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from openheim.foundation.fsutil import atomic_write_at
from openheim.foundation.models import Location, ToolDefinition, ToolResult
from openheim.sandbox.fileops import retrying
from openheim.sandbox.paths import Access, Confinement, InvalidPath, PathRefused, Resolved
from openheim.sandbox.policy import SandboxPolicy
from openheim.sandbox.quota import WorkspaceQuota
from openheim.tools.base import FileAccess, FileAccessError, ToolContext, ToolKind
from openheim.tools.common import (
    ArgumentError,
    absolute,
    as_sent,
    check_for_editor,
    error,
    os_error,
    refused,
    required_str,
    resolve_path,
)
from openheim.tools.edit_core import (
    Applied,
    Edit,
    EditFailed,
    apply_edits,
    parse_edits,
    unified_diff,
)
from openheim.tools.textfile import EDIT_LIMIT, NotText, file_diff, read_text_at

_DESCRIPTION = (
    "Edit a text file by exact string replacement; use it instead of write_file to change part "
    "of an existing file. `old_string` must match the file's text exactly (whitespace and "
    "indentation included: copy it from read_file's output) and exactly once, unless "
    "`replace_all` is true; include a few surrounding lines to make it unique. To make several "
    "changes to one file, pass `edits` (a list of {old_string, new_string, replace_all?}): they "
    "apply in order, each to the result of the one before, and if any fails none is written. "
    "Line endings are kept (write LF; a CRLF file stays CRLF). Returns a unified diff of the "
    f"change. Binary files and files over {EDIT_LIMIT // (1024 * 1024)} MiB are refused; "
    "create new files with write_file."
)

_EDIT_ITEM = {
    "type": "object",
    "properties": {
        "old_string": {"type": "string", "description": "Exact text to replace."},
        "new_string": {"type": "string", "description": "Text to put in its place."},
        "replace_all": {"type": "boolean", "description": "Replace every match (default no)."},
    },
    "required": ["old_string", "new_string"],
}


class EditFileTool:
    """The ``edit_file`` tool; see the module docstring."""

    kind = ToolKind.EDIT

    def __init__(self) -> None:
        self._definition = ToolDefinition(
            name="edit_file",
            description=_DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File to edit."},
                    **_EDIT_ITEM["properties"],  # type: ignore[dict-item]
                    "edits": {
                        "type": "array",
                        "items": _EDIT_ITEM,
                        "description": "Several edits, applied in order (instead of old_string).",
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
            edits = parse_edits(arguments)
        except ArgumentError as exc:
            return error(str(exc))
        path = resolve_path(raw, context.cwd)
        policy = context.sandbox.policy
        if context.files is not None:
            denied = await check_for_editor(raw, path, Access.WRITE, policy)
            if denied is not None:
                return denied
            done = await _edit_in_editor(context.files, path, raw, edits)
            if done is not None:
                return done
        # Not abandoned on cancel: the thread must finish so no temp file is left behind.
        try:
            return await trio.to_thread.run_sync(
                edit_sync, path, edits, policy, context.sandbox.quota, as_sent(raw)
            )
        except PathRefused:
            return refused(raw, Access.WRITE, policy)
        except InvalidPath as exc:
            return error(f"Invalid path {as_sent(raw)}: {exc}")


def _answer(path: Path, shown: str, old: str, applied: Applied) -> ToolResult:
    count = applied.replacements
    head = f"Edited {shown} ({count} replacement{'s' if count != 1 else ''}):\n"
    return ToolResult(
        head + unified_diff(old, applied.text, shown).rstrip("\n"),
        diffs=file_diff(str(path), old, applied.text),
        locations=(Location(str(path), applied.first_line),),
    )


async def _edit_in_editor(
    files: FileAccess, path: Path, raw: str, edits: list[Edit]
) -> ToolResult | None:
    """The edit through the editor; None when it reads or writes no files (use the disk)."""
    shown = as_sent(raw)
    try:
        old = await files.read_text(path, None, None)
    except NotImplementedError:
        return None
    except FileAccessError as exc:
        return error(f"Cannot read {shown}: {exc}")
    if "\0" in old:
        return error(f"{shown}: binary file; not edited")
    try:
        applied = apply_edits(old, edits, shown)
    except EditFailed as exc:
        return error(str(exc))
    try:
        await files.write_text(path, applied.text)
    except NotImplementedError:
        return None  # read from the editor, but it writes nothing: edit the disk instead
    except FileAccessError as exc:
        return error(f"Cannot write {shown}: {exc}")
    return _answer(path, shown, old, applied)


def edit_sync(
    path: Path,
    edits: list[Edit],
    policy: SandboxPolicy,
    quota: WorkspaceQuota | None,
    shown: str,
) -> ToolResult:
    """Blocking body of ``edit_file``; raises ``PathRefused`` or ``InvalidPath`` outside
    ``policy``. Read, edit and atomic write all happen on one resolution of the path."""
    confinement = Confinement.of(policy, Access.WRITE)

    def edit(resolved: Resolved) -> ToolResult:
        old = read_text_at(resolved, shown)
        applied = apply_edits(old, edits, shown)
        data = applied.text.encode("utf-8")
        if quota is not None:
            quota.reserve(resolved.dir_fd, resolved.name, len(data))
        atomic_write_at(resolved.dir_fd, resolved.name, data, shown=shown)
        return _answer(path, shown, old, applied)

    try:
        return retrying(confinement, absolute(path), edit)
    except (EditFailed, NotText) as exc:
        return error(str(exc))
    except FileNotFoundError:
        return error(f"File not found: {shown}; create new files with write_file")
    except OSError as exc:
        return os_error("edit", shown, exc)
