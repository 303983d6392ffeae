"""Reading a whole text file at a resolved path, for the tools that change files: the edit
needs the text it edits, and a write the old text its diff shows. Blocking: a worker thread.
"""

from __future__ import annotations

import errno
import os
import stat

from openheim.foundation.errors import ClientError
from openheim.foundation.models import FileDiff
from openheim.sandbox.fileops import open_final
from openheim.sandbox.paths import Resolved

#: Files larger than this are not edited (the model should rewrite or split them).
EDIT_LIMIT = 4 * 1024 * 1024
#: Texts larger than this travel to a client without a diff (editors choke on huge diffs).
DIFF_PAYLOAD_LIMIT = 512 * 1024


class NotText(ClientError, ValueError):
    """The file is binary, not UTF-8, not a regular file, or too large to edit."""


def read_text_at(resolved: Resolved, shown: str, limit: int = EDIT_LIMIT) -> str:
    """The whole file's text; raises ``FileNotFoundError`` if it does not exist, ``NotText``
    (naming ``shown``) if it is no text file we edit, ``OSError`` otherwise."""
    fd = open_final(resolved, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", shown)
        if not stat.S_ISREG(info.st_mode):
            raise NotText(f"{shown} is not a regular file")
        if info.st_size > limit:
            raise NotText(f"{shown} has {info.st_size} bytes, more than the {limit} this edits")
        data = f.read(limit + 1)
    if b"\0" in data:
        raise NotText(f"{shown}: binary file; not edited")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotText(f"{shown}: not UTF-8 text; not edited") from None


def old_text_at(resolved: Resolved) -> str | None:
    """The text being replaced, for a diff: None for a new file; raises ``NotText`` (or
    ``OSError``) when there is something but no diffable text."""
    try:
        return read_text_at(resolved, resolved.name, DIFF_PAYLOAD_LIMIT)
    except FileNotFoundError:
        return None


def file_diff(path: str, old: str | None, new: str) -> tuple[FileDiff, ...]:
    """The diff for a client, or none when the texts are too large to send."""
    if len(new) + len(old or "") > DIFF_PAYLOAD_LIMIT:
        return ()
    return (FileDiff(path, old, new),)
