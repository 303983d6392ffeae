"""Blocking reads and writes of conversation files, for worker threads; failures as
``HistoryError`` naming the file to the operator and only the conversation to a client."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from openheim.foundation.errors import ConversationNotFoundError, HistoryError
from openheim.foundation.fsutil import atomic_write

#: (inode, size, mtime) of a conversation file: a save replaces the file, so any write by
#: anyone changes it.
Stamp = tuple[int, int, int]


def read_stamped(path: Path, conversation_id: str) -> tuple[Any, Stamp]:
    """The JSON document at ``path`` and the stamp of the file it was read from."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            return json.load(handle), (info.st_ino, info.st_size, info.st_mtime_ns)
    except FileNotFoundError:
        raise ConversationNotFoundError(
            f"conversation {conversation_id} not found (looked for {path})",
            public=f"conversation {conversation_id} not found",
        ) from None
    except (OSError, ValueError) as exc:
        raise HistoryError(
            f"cannot read conversation file {path}: {exc}",
            public=f"conversation {conversation_id} cannot be read",
        ) from None


def read_document(path: Path, conversation_id: str) -> Any:
    return read_stamped(path, conversation_id)[0]


def delete_document(path: Path, conversation_id: str) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        raise ConversationNotFoundError(
            f"conversation {conversation_id} not found (looked for {path})",
            public=f"conversation {conversation_id} not found",
        ) from None
    except OSError as exc:
        raise HistoryError(
            f"cannot delete conversation file {path}: {exc.strerror or exc}",
            public=f"conversation {conversation_id} cannot be deleted",
        ) from None


def write_document(path: Path, document: Any) -> None:
    data = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
    try:
        atomic_write(path, data, private=True)
    except OSError as exc:
        raise HistoryError(
            f"cannot save conversation to {path}: {exc.strerror or exc}",
            public="cannot save the conversation (the server log says why)",
        ) from None
