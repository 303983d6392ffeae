"""What a doctor check returns: rows with a status and, when something is wrong, a fix.

Rows are plain data so the checks stay testable in-process and the table and ``--json`` are
two renderings of the same thing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from openheim.foundation.redact import REDACTED

#: Shorter "secrets" (an env value like ``1``) would redact ordinary words in messages.
MIN_SECRET_LENGTH = 6


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"

    @property
    def marker(self) -> str:
        """How the table shows it: a failure must stand out even without colour."""
        return "FAIL" if self is Status.FAIL else self.value


@attrs.frozen
class Row:
    """One finding: ``check`` is the area, ``subject`` what was checked, ``aspect`` which part.

    ``data`` holds machine-readable facts (latency, tool count, schema version) for ``--json``.
    """

    check: str
    subject: str
    status: Status
    detail: str
    fix: str | None = None
    aspect: str = ""
    data: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.check, self.subject, self.aspect) if part)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "aspect": self.aspect,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
            **self.data,
        }


@attrs.frozen
class Report:
    config_path: Path
    rows: Sequence[Row]

    @property
    def failed(self) -> bool:
        """Any FAIL makes ``openheim doctor`` exit 1; warnings do not."""
        return any(row.status is Status.FAIL for row in self.rows)

    def count(self, status: Status) -> int:
        return sum(1 for row in self.rows if row.status is status)


def scrub(rows: Iterable[Row], secrets: Iterable[str]) -> list[Row]:
    """Rows with every known secret replaced: servers echo keys in error messages."""
    hidden = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    if not hidden:
        return list(rows)

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for secret in hidden:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return [
        attrs.evolve(
            row,
            detail=clean(row.detail),
            fix=clean(row.fix),
            subject=clean(row.subject),
            data=clean(row.data),
        )
        for row in rows
    ]


def split_fix(message: str) -> tuple[str, str | None]:
    """Our errors read "problem; fix: what to do." — the table shows the two apart."""
    head, sep, fix = message.partition("; fix: ")
    if not sep:
        return message, None
    return head, fix.rstrip(".")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
