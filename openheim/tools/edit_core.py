"""The pure part of ``edit_file``: exact-string edits applied in order, line endings kept, and
the unified diff the model (and a terminal) sees. No I/O here.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import attrs

from openheim.foundation.errors import ClientError
from openheim.tools.common import ArgumentError

#: Text this long or longer in the model's diff is cut, with a note.
DIFF_LIMIT = 32 * 1024


@attrs.frozen
class Edit:
    old: str
    new: str
    replace_all: bool = False


class EditFailed(ClientError, ValueError):
    """An edit that cannot apply; the message names the path as the model sent it."""


def parse_edits(arguments: dict[str, Any]) -> list[Edit]:
    """``edits: [...]`` or one edit given at the top level; raises ``ArgumentError``."""
    if "edits" in arguments:
        if any(key in arguments for key in ("old_string", "new_string", "replace_all")):
            raise ArgumentError("Give either 'edits' or 'old_string'/'new_string', not both")
        items = arguments["edits"]
        if not isinstance(items, list) or not items:
            raise ArgumentError("'edits' must be a non-empty array of {old_string, new_string}")
        return [_edit(item, f"edits[{index}]") for index, item in enumerate(items)]
    return [_edit(arguments, "")]


def _edit(item: object, where: str) -> Edit:
    prefix = f"{where}: " if where else ""
    if not isinstance(item, dict):
        raise ArgumentError(f"{prefix}each edit must be an object")
    old, new = item.get("old_string"), item.get("new_string")
    if not isinstance(old, str) or not old:
        raise ArgumentError(f"{prefix}Missing 'old_string' argument: a non-empty string")
    if not isinstance(new, str):
        raise ArgumentError(f"{prefix}Missing 'new_string' argument: a string")
    replace_all = item.get("replace_all", False)
    if not isinstance(replace_all, bool):
        raise ArgumentError(f"{prefix}'replace_all' must be true or false")
    if old == new:
        raise ArgumentError(f"{prefix}'old_string' and 'new_string' are the same: nothing to do")
    return Edit(old, new, replace_all)


def line_ending(text: str) -> str:
    """``\\r\\n`` when most of the file's line breaks are CRLF, else ``\\n``."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf * 2 >= text.count("\n") else "\n"


def _in_ending(text: str, ending: str) -> str:
    text = text.replace("\r\n", "\n")
    return text.replace("\n", ending) if ending != "\n" else text


@attrs.frozen
class Applied:
    text: str
    #: 1-based line of the first change in the new text.
    first_line: int
    replacements: int


def apply_edits(text: str, edits: Sequence[Edit], shown: str) -> Applied:
    """Each edit applied to the result of the one before; raises ``EditFailed`` (naming the
    edit when there are several) and changes nothing then. The model's text is taken with
    LF line breaks and written in the file's own ending."""
    ending = line_ending(text)
    first: int | None = None
    replacements = 0
    for index, edit in enumerate(edits):
        where = f"edit {index + 1} of {len(edits)}: " if len(edits) > 1 else ""
        old, new = _in_ending(edit.old, ending), _in_ending(edit.new, ending)
        count = text.count(old)
        if count == 0:
            raise EditFailed(
                f"{where}old_string was not found in {shown}; read the file and copy the text "
                "exactly, whitespace and indentation included"
            )
        if count > 1 and not edit.replace_all:
            raise EditFailed(
                f"{where}old_string matches {count} times in {shown}; add surrounding lines to "
                "make it unique, or set replace_all to change every match"
            )
        at = text.index(old)
        first = at if first is None else min(first, at)
        text = text.replace(old, new) if edit.replace_all else text.replace(old, new, 1)
        replacements += count if edit.replace_all else 1
    assert first is not None
    return Applied(text, text.count("\n", 0, first) + 1, replacements)


def unified_diff(old: str, new: str, shown: str, limit: int = DIFF_LIMIT) -> str:
    """A unified diff (3 lines of context) with LF line breaks, cut at ``limit`` characters."""
    lines = difflib.unified_diff(
        old.replace("\r\n", "\n").splitlines(keepends=True),
        new.replace("\r\n", "\n").splitlines(keepends=True),
        fromfile=f"a/{shown}",
        tofile=f"b/{shown}",
    )
    out: list[str] = []
    size = 0
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        size += len(line)
        if size > limit:
            out.append(f"[... diff cut at {limit} characters]\n")
            break
        out.append(line)
    return "".join(out)
