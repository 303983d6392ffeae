"""The report as an aligned plain-text table (readable in a pipe or a CI log) or as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable

from openheim.doctor.rows import Report, Status

_COLOURS = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red", Status.SKIP: None}
_MARKER_WIDTH = max(len(status.marker) for status in Status)


def render_table(report: Report, *, colour: bool = False) -> str:
    """One line per row, status first; a failing or warning row's fix on the line below.

    Plain text on purpose: no box drawing, no wrapping to a guessed width, so it reads the
    same in a terminal, a pipe and a CI log. ``colour`` only tints the status markers.
    """
    style = _styler(colour)
    width = max((len(row.label) for row in report.rows), default=0)
    indent = " " * (_MARKER_WIDTH + 2 + width + 2)
    lines = [f"openheim doctor: {report.config_path}", ""]
    for row in report.rows:
        marker = row.status.marker.ljust(_MARKER_WIDTH)
        lines.append(f"{style(marker, row.status)}  {row.label.ljust(width)}  {row.detail}")
        if row.fix and row.status in (Status.FAIL, Status.WARN):
            lines.append(f"{indent}fix: {row.fix}")
    lines += ["", summary(report)]
    return "\n".join(lines) + "\n"


def summary(report: Report) -> str:
    counts = [
        f"{report.count(status)} {word}"
        for status, word in (
            (Status.FAIL, "failed"),
            (Status.WARN, "warning"),
            (Status.OK, "ok"),
            (Status.SKIP, "skipped"),
        )
        if report.count(status) or status is Status.FAIL
    ]
    return ", ".join(counts)


def render_json(report: Report) -> str:
    """``{"ok": ..., "config": ..., "rows": [...]}``, for scripts; rows carry their data."""
    payload = {
        "ok": not report.failed,
        "config": str(report.config_path),
        "rows": [row.to_json() for row in report.rows],
    }
    return json.dumps(payload, indent=2) + "\n"


def _styler(colour: bool) -> Callable[[str, Status], str]:
    if not colour:
        return lambda text, _status: text
    import asyncclick as click

    def style(text: str, status: Status) -> str:
        tint = _COLOURS[status]
        return click.style(text, fg=tint, bold=status is Status.FAIL or None) if tint else text

    return style
