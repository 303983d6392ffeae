"""What a face gives a session when it opens one, and the hold it keeps on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from openheim.permissions import Asker
from openheim.tools.base import FileAccess


@attrs.frozen
class SessionOptions:
    cwd: Path
    model: str | None = None
    skills: tuple[str, ...] | None = None
    max_iterations: int | None = None
    allow_all_tools: bool = False
    #: MCP servers a client passed for this session only (``McpServerConfig``): they start
    #: with the session, stop with it, and no other session sees their tools.
    mcp_servers: tuple[Any, ...] = ()
    #: Folders beside ``cwd`` that the tools may work in (read-write, inside the sandbox).
    additional_roots: tuple[Path, ...] = ()


@attrs.define(eq=False)
class Attachment:
    """One face's hold on a session (``Session.attach``)."""

    asker: Asker | None
    files: FileAccess | None
    _holders: list[Attachment] = attrs.field(alias="holders")

    def claim(self) -> None:
        """Answer for the session again, ahead of faces that attached since."""
        if self in self._holders:
            self._holders.remove(self)
            self._holders.append(self)

    def release(self) -> None:
        """Stop answering for the session (also done on leaving ``attach``; safe twice)."""
        if self in self._holders:
            self._holders.remove(self)
