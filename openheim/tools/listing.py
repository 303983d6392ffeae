"""``list_dir`` and ``glob``: what is in a folder tree, .gitignore respected, capped.

Both walk with ``tools.walk`` (inside the session's policy, race-free, ``.git`` and ignored
files skipped) in a worker thread, and answer with paths relative to the folder asked for, so
no server path ever reaches the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

from openheim.foundation.models import Location, ToolDefinition, ToolResult
from openheim.sandbox.paths import Access, Confinement, InvalidPath, PathRefused
from openheim.sandbox.policy import SandboxPolicy
from openheim.tools.base import ToolContext, ToolKind
from openheim.tools.common import (
    ArgumentError,
    absolute,
    as_sent,
    error,
    optional_positive_int,
    optional_str,
    os_error,
    refused,
    required_str,
    resolve_path,
)
from openheim.tools.globbing import BadPattern, compile_glob
from openheim.tools.walk import Target, Walk, ancestor_rules, open_target

T = TypeVar("T")


async def in_tree(
    raw: str,
    context: ToolContext,
    body: Callable[[Confinement, Target, str], T],
) -> T | ToolResult:
    """Open the tree at ``raw`` (relative to the cwd) and run ``body`` on it in a worker
    thread; a refused or missing path becomes the error the model sees."""
    path = resolve_path(raw, context.cwd)
    policy: SandboxPolicy = context.sandbox.policy
    shown = as_sent(raw)

    def run() -> T | ToolResult:
        confinement = Confinement.of(policy, Access.READ)
        try:
            target = open_target(confinement, absolute(path))
        except OSError as exc:
            return os_error("read", shown, exc)
        try:
            return body(confinement, target, shown)
        finally:
            target.close()

    try:
        return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    except PathRefused:
        return refused(raw, Access.READ, policy)
    except InvalidPath as exc:
        return error(f"Invalid path {shown}: {exc}")


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size:.1f} GiB"


class ListDirTool:
    """The ``list_dir`` tool: a folder's entries, and its subfolders' to a depth."""

    kind = ToolKind.READ

    def __init__(self, max_entries: int = 1000, max_depth: int = 8) -> None:
        self.max_entries = max_entries
        self.max_depth = max_depth
        self._definition = ToolDefinition(
            name="list_dir",
            description=(
                "List a folder: one path per line relative to it, sorted, folders ending in "
                "`/` and symlinks in `@`, files with their size. Use it to see a project's "
                "layout before reading files. Files ignored by .gitignore and the .git folder "
                f"are left out. `depth` (default 1, max {max_depth}) lists subfolders too; at "
                f"most {max_entries} entries are shown, with a note when the listing was cut."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Folder to list (default: cwd)."},
                    "depth": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "How many levels to list (default 1: just the folder).",
                    },
                },
            },
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            raw = optional_str(arguments, "path") or "."
            depth = min(optional_positive_int(arguments, "depth") or 1, self.max_depth)
        except ArgumentError as exc:
            return error(str(exc))
        result = await in_tree(raw, context, lambda c, t, s: self._list(c, t, s, depth))
        if result.is_error:
            return result
        folder = Location(str(resolve_path(raw, context.cwd)))
        return ToolResult(result.content, locations=(folder,))

    def _list(self, confinement: Confinement, target: Target, shown: str, depth: int) -> ToolResult:
        if not target.is_dir:
            return error(f"{shown} is a file, not a folder; read it with read_file")
        walk = Walk(confinement, target, depth, rules=ancestor_rules(confinement, target))
        lines: list[str] = []
        full = False
        for _fd, entry in walk.entries():
            if len(lines) >= self.max_entries:
                full = True
                break
            if entry.is_link:
                lines.append(f"{entry.rel}@")
            elif entry.is_dir:
                lines.append(f"{entry.rel}/")
            else:
                lines.append(f"{entry.rel} ({_size(entry.size)})")
        lines.sort(key=lambda line: line.split(" (")[0].rstrip("/@"))
        if not lines:
            return ToolResult(f"{shown} is empty (or holds only ignored files)")
        if full:
            lines.append(
                f"[... cut at {self.max_entries} entries; list a subfolder or a smaller depth]"
            )
        elif walk.cut:
            lines.append("[... deeper folders not listed; raise depth or list a subfolder]")
        return ToolResult("\n".join(lines))


class GlobTool:
    """The ``glob`` tool: files whose path below a folder matches a pattern."""

    kind = ToolKind.SEARCH

    def __init__(self, max_results: int = 500, max_depth: int = 32) -> None:
        self.max_results = max_results
        self.max_depth = max_depth
        self._definition = ToolDefinition(
            name="glob",
            description=(
                "Find files by name pattern, e.g. `**/*.py`, `src/**/test_*.{ts,tsx}`: `*` and "
                "`?` match within one folder level, `**` across levels, `{a,b}` either; a pattern "
                "without `/` matches file names at any depth. Returns matching file paths "
                "relative to `path` (default: cwd), sorted, at most "
                f"{max_results}. Files ignored by .gitignore and the .git folder are skipped. "
                "Use grep to search inside files."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Glob to match paths against."},
                    "path": {"type": "string", "description": "Folder to search (default: cwd)."},
                },
                "required": ["pattern"],
            },
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            pattern = required_str(arguments, "pattern")
            raw = optional_str(arguments, "path") or "."
            regex = compile_glob(pattern)
        except (ArgumentError, BadPattern) as exc:
            return error(str(exc))

        def find(confinement: Confinement, target: Target, shown: str) -> ToolResult:
            if not target.is_dir:
                return error(f"{shown} is a file, not a folder")
            rules = ancestor_rules(confinement, target)
            walk = Walk(confinement, target, self.max_depth, rules=rules)
            found: list[str] = []
            for _fd, entry in walk.entries():
                if not entry.is_dir and regex.match(entry.rel):
                    found.append(entry.rel)
                    if len(found) > self.max_results:
                        break
            found.sort()
            if not found:
                return ToolResult(f"No files match {pattern} in {shown}")
            if len(found) > self.max_results:
                found = found[: self.max_results]
                found.append(f"[... cut at {self.max_results} files; use a narrower pattern]")
            elif walk.cut:
                found.append("[... the search stopped early (too deep or too many files)]")
            return ToolResult("\n".join(found))

        return await in_tree(raw, context, find)
