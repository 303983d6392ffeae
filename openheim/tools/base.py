"""The tool protocol and registry.

A tool is any object with a ``definition`` and an async ``call``; users add their own by
registering such an object. Tools report failure as ``ToolResult(is_error=True)`` so the model
sees it; an exception escaping ``call`` is turned into such a result by the agent loop.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from openheim.foundation.errors import ClientError
from openheim.foundation.models import ToolDefinition, ToolResult
from openheim.sandbox.sandbox import Sandbox, unconfined
from openheim.tools.plan_core import ShowPlan


class FileAccessError(ClientError):
    """A ``FileAccess`` could not read or write; the message is shown to the model."""


class FileAccess(Protocol):
    """Where the file tools read and write when not the local disk: an ACP client's editor
    buffers, for one (unsaved changes and the editor's own undo history then apply).

    Paths are absolute. Raise ``FileAccessError`` for a failure the model should see, and
    ``NotImplementedError`` to let the tool use the local disk for that operation (a client
    may offer reads but not writes).
    """

    async def read_text(self, path: Path, line: int | None, limit: int | None) -> str: ...

    async def write_text(self, path: Path, content: str) -> None: ...


class ToolKind(enum.StrEnum):
    """What a tool does, in ACP's words, so an editor can pick an icon and a view. A tool
    declares it as a ``kind`` attribute; a tool without one (an MCP tool) is ``other``."""

    READ = "read"
    EDIT = "edit"
    DELETE = "delete"
    MOVE = "move"
    SEARCH = "search"
    EXECUTE = "execute"
    THINK = "think"
    FETCH = "fetch"
    OTHER = "other"


#: The kinds that touch nothing outside the session, so ``ask`` mode need not ask about them.
_UNASKED = frozenset({ToolKind.READ, ToolKind.SEARCH, ToolKind.THINK})


def kind_of(tool: object) -> ToolKind:
    """The kind ``tool`` declares; ``other`` when it declares none or something else."""
    kind = getattr(tool, "kind", None)
    return kind if isinstance(kind, ToolKind) else ToolKind.OTHER


#: Called by a long-running tool with its output so far (the tail it keeps), for live views.
#: The loop provides one per call; it may block while a slow client catches up.
Progress = Callable[[str], Awaitable[None]]


@attrs.frozen
class ToolContext:
    """What a tool may know about the session that calls it."""

    cwd: Path
    session_id: str = ""
    env: Mapping[str, str] = attrs.field(factory=dict)
    files: FileAccess | None = None
    #: Where the tool may read and write, and how it starts processes. A context made by hand
    #: (a library's own tool, a test) is unconfined, as before sandboxing existed.
    sandbox: Sandbox = attrs.field(factory=unconfined)
    #: Where a running tool reports its output as it comes; None: nobody is watching.
    progress: Progress | None = None
    #: Where ``update_plan`` shows a plan it accepted; None: nobody is watching.
    show_plan: ShowPlan | None = None


@runtime_checkable
class Tool(Protocol):
    @property
    def definition(self) -> ToolDefinition: ...

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult: ...


class ToolSource(Protocol):
    """Tools that come and go while a session lives (an MCP server connecting or dying)."""

    def tools(self) -> list[Tool]: ...

    def find(self, name: str) -> Tool | None: ...


class ToolRegistry:
    """Tools by name. Registering a name twice is an error, never a silent overwrite.

    ``live`` sources are asked on every lookup, so their tools appear once they exist. On a
    name clash the registered tools win, then the source added last (a session's own MCP
    servers over the process's).
    """

    def __init__(self, tools: Iterable[Tool] = (), *, live: ToolSource | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._live: list[ToolSource] = [live] if live is not None else []
        for tool in tools:
            self.register(tool)

    def add_source(self, source: ToolSource) -> None:
        self._live.insert(0, source)

    def remove_source(self, source: ToolSource) -> None:
        self._live = [live for live in self._live if live is not source]

    def register(self, tool: Tool) -> None:
        name = tool.definition.name
        if name in self._tools:
            raise ValueError(f"a tool named {name!r} is already registered")
        self._tools[name] = tool

    def get(self, name: str) -> Tool | None:
        tool = self._tools.get(name)
        for source in self._live:
            if tool is not None:
                break
            tool = source.find(name)
        return tool

    def _all(self) -> dict[str, Tool]:
        if not self._live:
            return self._tools
        tools = dict(self._tools)
        for source in self._live:
            for tool in source.tools():
                tools.setdefault(tool.definition.name, tool)
        return tools

    def names(self) -> list[str]:
        return list(self._all())

    def definitions(self) -> tuple[ToolDefinition, ...]:
        return tuple(tool.definition for tool in self._all().values())

    def only_reads(self, name: str) -> bool:
        """Whether tool ``name`` only looks (kind read or search) or only thinks (the plan):
        what ``ask`` mode lets run unasked. An unknown tool, or one that declares no kind
        (MCP's), does not."""
        tool = self.get(name)
        return tool is not None and kind_of(tool) in _UNASKED

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._all().values())

    def __len__(self) -> int:
        return len(self._all())


def cap_output(text: str, limit: int) -> str:
    """At most ``limit`` bytes of ``text`` with a visible note of what was cut: a tool's output
    goes into the model's context, and one huge result must not flood it."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", errors="ignore")
    return f"{kept}\n[... output truncated: {len(data) - len(kept.encode())} more bytes]"
