"""What both ``grep`` engines share: the search's settings, its matches, the caps and the one
output shape (``path:line: text``, context lines ``path-line- text``, groups split by ``--``).
Pure, apart from ``search_python`` reading files through a ``tools.walk`` walk.
"""

from __future__ import annotations

import os
import re
import time

import attrs

from openheim.sandbox.paths import Confinement
from openheim.tools.walk import READ_FLAGS, Target, Walk, ancestor_rules

#: Files larger than this are not searched (logs, data dumps).
FILE_LIMIT = 4 * 1024 * 1024
_SNIFF = 8 * 1024


@attrs.frozen
class Search:
    pattern: str
    ignore_case: bool = False
    glob: re.Pattern[str] | None = None
    glob_text: str | None = None
    context: int = 0
    max_matches: int = 200
    max_line: int = 300
    max_files: int = 20_000
    max_seconds: float = 30.0

    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.IGNORECASE if self.ignore_case else 0)


@attrs.frozen
class Line:
    path: str  # relative to the search root
    number: int
    text: str
    is_match: bool


@attrs.define
class Found:
    lines: list[Line] = attrs.field(factory=list)
    matches: int = 0
    files: set[str] = attrs.field(factory=set)
    #: Why the search stopped before the end, for the note; empty if it did not.
    cut: str = ""

    def add(self, line: Line, search: Search) -> bool:
        """Keep ``line``; False once the match cap is reached (stop searching)."""
        if line.is_match:
            if self.matches >= search.max_matches:
                self.cut = f"more than {search.max_matches} matches"
                return False
            self.matches += 1
            self.files.add(line.path)
        self.lines.append(line)
        return True


def _clip(text: str, limit: int) -> str:
    text = text.rstrip("\r\n")
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore") + " [... line cut]"


def render(found: Found, search: Search, prefix: str) -> str:
    """The lines as the model sees them; ``prefix`` goes before each relative path."""
    out: list[str] = []
    last: Line | None = None
    for line in sorted(found.lines, key=lambda line: (line.path, line.number)):
        if last is not None and (last.path, last.number + 1) != (line.path, line.number):
            if search.context:
                out.append("--")
        elif last is not None and (last.path, last.number) == (line.path, line.number):
            continue  # a context line also reported as a match, or twice
        mark = ":" if line.is_match else "-"
        text = _clip(line.text, search.max_line)
        out.append(f"{prefix}{line.path}{mark}{line.number}{mark} {text}")
        last = line
    if not found.matches:
        return "No matches"
    matches = "match" if found.matches == 1 else "matches"
    where = "file" if len(found.files) == 1 else "files"
    out.append(f"[{found.matches} {matches} in {len(found.files)} {where}]")
    if found.cut:
        out[-1] = f"[stopped: {found.cut}; narrow the pattern, path or glob]"
    return "\n".join(out)


def _text(fd: int) -> str | None:
    with os.fdopen(fd, "rb") as f:
        head = f.read(_SNIFF)
        if b"\0" in head:
            return None
        return (head + f.read(FILE_LIMIT)).decode("utf-8", errors="replace")


def _search_text(text: str, rel: str, regex: re.Pattern[str], search: Search, found: Found) -> bool:
    lines = text.splitlines()
    kept_until = -1  # the last line index already added as context
    for index, line in enumerate(lines):
        if not regex.search(line):
            continue
        for before in range(max(index - search.context, kept_until + 1), index):
            found.add(Line(rel, before + 1, lines[before], False), search)
        if not found.add(Line(rel, index + 1, line, True), search):
            return False
        after_end = min(index + search.context, len(lines) - 1)
        for after in range(index + 1, after_end + 1):
            if not regex.search(lines[after]):
                found.add(Line(rel, after + 1, lines[after], False), search)
        kept_until = after_end
    return True


def search_python(confinement: Confinement, target: Target, name: str, search: Search) -> Found:
    """The fallback engine: the walk's files (or the one file), searched with ``re``."""
    regex = search.regex()
    found = Found()
    if not target.is_dir:
        text = _text(os.dup(target.fd))
        if text is not None:
            _search_text(text, name, regex, search, found)
        return found
    deadline = time.monotonic() + search.max_seconds
    walk = Walk(confinement, target, 64, search.max_files, ancestor_rules(confinement, target))
    files = 0
    for folder, entry in walk.entries():
        if entry.is_dir or entry.is_link or entry.size > FILE_LIMIT:
            continue
        if search.glob is not None and not search.glob.match(entry.rel):
            continue
        files += 1
        if files > search.max_files or time.monotonic() > deadline:
            found.cut = f"searched {files - 1} files in the time or file budget"
            break
        try:
            text = _text(os.open(entry.name, READ_FLAGS, dir_fd=folder))
        except OSError:
            continue
        if text is not None and not _search_text(text, entry.rel, regex, search, found):
            break
    return found
