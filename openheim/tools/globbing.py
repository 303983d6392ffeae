"""Glob patterns as the ``glob`` and ``grep`` tools take them, translated to regular
expressions: ``*`` and ``?`` stay inside one path segment, ``**`` spans folders, ``[...]`` is a
character class and ``{a,b}`` an alternation (``**/*.{ts,tsx}``). Pure.
"""

from __future__ import annotations

import functools
import re

from openheim.foundation.errors import ClientError


class BadPattern(ClientError, ValueError):
    """A glob the translator cannot read; the message is for the model."""


@functools.lru_cache(maxsize=64)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regex that matches a whole ``/``-separated relative path against ``pattern``.
    A pattern without ``/`` matches file names at any depth, as ``rg -g`` does."""
    if not pattern or pattern.startswith("/"):
        raise BadPattern(f"glob {pattern!r} must be a non-empty relative pattern")
    body = _translate(pattern)
    if "/" not in pattern:
        body = f"(?:.*/)?{body}"
    return re.compile(f"{body}\\Z", re.DOTALL)


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, depth = 0, 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end < 0:
                raise BadPattern(f"glob {pattern!r} has an unclosed '['")
            inner = pattern[i + 1 : end]
            if inner[:1] in ("!", "^"):
                inner = "^" + inner[1:]
            out.append(f"[{inner.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
            continue
        elif char == "{":
            out.append("(?:")
            depth += 1
        elif char == "}" and depth:
            out.append(")")
            depth -= 1
        elif char == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(char))
        i += 1
    if depth:
        raise BadPattern(f"glob {pattern!r} has an unclosed '{{'")
    return "".join(out)


def matches(pattern: re.Pattern[str], rel: str) -> bool:
    return pattern.match(rel) is not None
