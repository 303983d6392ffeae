"""``grep``: a regular expression over a folder tree, answered as ``path:line: text``.

ripgrep (``rg``) does the searching when it is installed, started like every command through
the session's sandbox; otherwise a Python engine does (``grep_core``). Both skip ``.git`` and
what .gitignore ignores, search hidden files, skip binary and huge files, and stop at the same
caps, so the model sees one shape either way. With hidden paths (the server's own files) under
the root, only the Python engine runs: it never shows them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs
import trio

from openheim.foundation.models import Location, ToolDefinition, ToolResult
from openheim.sandbox.paths import Confinement, within
from openheim.sandbox.process import open_sandboxed_process
from openheim.tools.base import ToolContext, ToolKind
from openheim.tools.common import (
    ArgumentError,
    as_sent,
    error,
    optional_bool,
    optional_str,
    required_str,
    resolve_path,
)
from openheim.tools.globbing import BadPattern, compile_glob
from openheim.tools.grep_core import FILE_LIMIT, Found, Line, Search, render, search_python
from openheim.tools.listing import in_tree
from openheim.tools.walk import Target

_MAX_CONTEXT = 5
_RG_LINE_LIMIT = 1024 * 1024

_DESCRIPTION = (
    "Search file contents for a regular expression (Rust/Python regex syntax: escape `(`, `.`, "
    "`{` etc. to match them literally). Returns `path:line: text` for each matching line, "
    "sorted by path, with `-C`-style context lines shown as `path-line- text` when `context` "
    "is set. Searches `path` (a folder, default the working directory, or one file); `glob` "
    "limits which files (e.g. `*.py`, `src/**/*.ts`); `ignore_case` makes it case-insensitive. "
    "Skips .git, files ignored by .gitignore, binary files and files over "
    f"{FILE_LIMIT // (1024 * 1024)} MiB. At most {{max_matches}} matches are shown and long "
    "lines are cut, with a note when the search stopped early. Use glob to find files by name."
)


@attrs.frozen
class _Root:
    path: str  # logical absolute path of the folder or file searched
    is_dir: bool


class GrepTool:
    """The ``grep`` tool; see the module docstring."""

    kind = ToolKind.SEARCH

    def __init__(self, max_matches: int = 200, max_seconds: float = 30.0) -> None:
        self.max_matches = max_matches
        self.max_seconds = max_seconds
        self._definition = ToolDefinition(
            name="grep",
            description=_DESCRIPTION.replace("{max_matches}", str(max_matches)),
            parameters={
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression."},
                    "path": {"type": "string", "description": "Folder or file (default: cwd)."},
                    "glob": {"type": "string", "description": "Only files matching this glob."},
                    "ignore_case": {"type": "boolean", "description": "Case-insensitive."},
                    "context": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": _MAX_CONTEXT,
                        "description": "Lines of context before and after each match.",
                    },
                },
                "required": ["pattern"],
            },
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            search = self._search(arguments)
            raw = optional_str(arguments, "path") or "."
        except (ArgumentError, BadPattern) as exc:
            return error(str(exc))
        rg = _ripgrep(context)
        if rg is not None:
            root = await in_tree(raw, context, _probe)
            if isinstance(root, ToolResult):
                return root
            found = await self._with_rg(rg, search, root, context)
            if isinstance(found, ToolResult):
                return found
            if found is not None:
                return _answer(found, search, raw, context, is_file=not root.is_dir)
        try:
            search.regex()
        except re.error as exc:
            return error(f"Invalid regular expression {search.pattern!r}: {exc}")

        def python(confinement: Confinement, target: Target, shown: str) -> ToolResult:
            found = search_python(confinement, target, shown, search)
            return _answer(found, search, raw, context, is_file=not target.is_dir)

        return await in_tree(raw, context, python)

    def _search(self, arguments: dict[str, Any]) -> Search:
        pattern = required_str(arguments, "pattern")
        glob_text = optional_str(arguments, "glob")
        lines = arguments.get("context", 0)
        if isinstance(lines, float) and lines.is_integer():
            lines = int(lines)
        if isinstance(lines, bool) or not isinstance(lines, int) or not 0 <= lines <= _MAX_CONTEXT:
            raise ArgumentError(f"'context' must be a whole number from 0 to {_MAX_CONTEXT}")
        return Search(
            pattern=pattern,
            ignore_case=optional_bool(arguments, "ignore_case"),
            glob=compile_glob(glob_text) if glob_text else None,
            glob_text=glob_text,
            context=lines,
            max_matches=self.max_matches,
            max_seconds=self.max_seconds,
        )

    async def _with_rg(
        self, rg: str, search: Search, root: _Root, context: ToolContext
    ) -> Found | ToolResult | None:
        """ripgrep's matches; None when it cannot run here (the Python engine then does)."""
        if any(within(str(hidden), root.path) for hidden in context.sandbox.policy.hidden):
            return None
        folder = root.path if root.is_dir else os.path.dirname(root.path)
        what = "." if root.is_dir else os.path.basename(root.path)
        argv = [rg, "--json", "--no-config", "--no-require-git", "--hidden", "--sort", "path"]
        argv += ["--glob", "!.git", "--max-filesize", str(FILE_LIMIT)]
        if search.ignore_case:
            argv.append("--ignore-case")
        if search.context:
            argv += ["--context", str(search.context)]
        if search.glob_text:
            argv += ["--glob", search.glob_text]
        argv += ["--regexp", search.pattern, "--", what]
        found = Found()
        try:
            async with open_sandboxed_process(
                context.sandbox,
                argv,
                Path(folder),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ) as process:
                assert process.stdout is not None and process.stderr is not None
                with trio.move_on_after(self.max_seconds) as timer:
                    buffer = b""
                    async for chunk in process.stdout:
                        buffer += chunk
                        *lines, buffer = buffer.split(b"\n")
                        if not all(_take(line, search, found) for line in lines):
                            return found
                        if len(buffer) > _RG_LINE_LIMIT:
                            buffer = b""  # one absurd line: dropped
                    stderr = await process.stderr.receive_some(4096)
                    code = await process.wait()
                if timer.cancelled_caught:
                    found.cut = f"the search took over {self.max_seconds:g} s"
                    return found
        except OSError:
            return None
        if code == 2 and not found.matches:
            message = stderr.decode("utf-8", "replace").strip().splitlines()
            detail = message[-1].removeprefix("error: ") if message else "ripgrep failed"
            return error(f"Invalid regular expression {search.pattern!r}: {detail}")
        return found


def _take(raw: bytes, search: Search, found: Found) -> bool:
    """One line of ``rg --json``; False once the match cap is reached."""
    try:
        message = json.loads(raw)
    except ValueError:
        return True
    kind = message.get("type") if isinstance(message, dict) else None
    if kind not in ("match", "context"):
        return True
    data = message["data"]
    path = _rg_text(data.get("path", {}))
    if path.startswith("./"):
        path = path[2:]
    text = _rg_text(data.get("lines", {}))
    return found.add(Line(path, int(data.get("line_number") or 0), text, kind == "match"), search)


def _rg_text(field: dict[str, str]) -> str:
    if "text" in field:
        return field["text"]
    return base64.b64decode(field.get("bytes", "")).decode("utf-8", "replace")


def _ripgrep(context: ToolContext) -> str | None:
    return shutil.which("rg", path=context.sandbox.policy.env.get("PATH", os.defpath))


def _probe(confinement: Confinement, target: Target, shown: str) -> _Root:
    del confinement, shown
    return _Root(target.path, target.is_dir)


#: Locations sent to a client for one search (an editor's follow-along list, not the model's).
_MAX_LOCATIONS = 50


def _answer(
    found: Found, search: Search, raw: str, context: ToolContext, *, is_file: bool
) -> ToolResult:
    """The rendered matches: paths below a folder as ``folder/rel`` (``rel`` for the cwd), a
    single file as the model named it."""
    shown = as_sent(raw)
    base = resolve_path(raw, context.cwd)
    found.lines.sort(key=lambda line: (line.path, line.number))
    if is_file:
        found.lines = [attrs.evolve(line, path=shown) for line in found.lines]
        prefix = ""
    else:
        prefix = "" if raw in (".", "./") else shown.rstrip("/") + "/"
    matches = [line for line in found.lines if line.is_match][:_MAX_LOCATIONS]
    locations = tuple(
        Location(str(base if is_file else base / line.path), line.number) for line in matches
    )
    return ToolResult(render(found, search, prefix), locations=locations)
