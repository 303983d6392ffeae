"""The plan the model keeps for a task, without I/O: its entries, how the ``update_plan``
arguments become them, and the short line the model gets back.

Kept apart from the tool so the faces (an ACP replay, a terminal) read a stored call's plan
the same way the tool checked it, and so ``ToolContext`` can name the type without a cycle.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs

from openheim.tools.common import ArgumentError

#: Enough for any task a model can keep in view; more is a runaway loop, not a plan.
MAX_ENTRIES = 50
#: Characters per entry: a plan item is one sentence, not a report.
MAX_CONTENT = 500


class PlanStatus(enum.StrEnum):
    """ACP's ``PlanEntryStatus`` words."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class PlanPriority(enum.StrEnum):
    """ACP's ``PlanEntryPriority`` words."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@attrs.frozen
class PlanEntry:
    content: str
    status: PlanStatus
    priority: PlanPriority = PlanPriority.MEDIUM


Plan = tuple[PlanEntry, ...]
_Choice = TypeVar("_Choice", PlanStatus, PlanPriority)

#: Where the plan tool shows a plan it accepted (the agent loop turns it into an event).
ShowPlan = Callable[[Plan], Awaitable[None]]


def parse_plan(arguments: dict[str, Any]) -> Plan:
    """The entries of an ``update_plan`` call; ``ArgumentError`` names the first bad one.

    Unknown keys in an entry are ignored (models add ids and notes), and ``entries`` sent as
    a JSON string is read as the list it holds (some models quote nested arrays).
    """
    raw = arguments.get("entries")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ArgumentError("'entries' must be a list of {content, status} objects") from None
    if not isinstance(raw, list):
        raise ArgumentError("Missing 'entries' argument: a list of {content, status} objects")
    if len(raw) > MAX_ENTRIES:
        raise ArgumentError(
            f"'entries' has {len(raw)} items, at most {MAX_ENTRIES} are allowed; "
            "merge small steps into larger ones"
        )
    return tuple(_entry(item, number) for number, item in enumerate(raw, start=1))


def _entry(item: object, number: int) -> PlanEntry:
    where = f"entries[{number}]"
    if not isinstance(item, dict):
        raise ArgumentError(f"{where} must be an object with 'content' and 'status'")
    content = item.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ArgumentError(f"{where}: 'content' must be a non-empty string")
    content = " ".join(content.split())
    if len(content) > MAX_CONTENT:
        raise ArgumentError(
            f"{where}: 'content' has {len(content)} characters, at most {MAX_CONTENT} are "
            "allowed; keep each entry to one short sentence"
        )
    status = _choice(PlanStatus, item.get("status"), f"{where}: 'status'")
    priority = item.get("priority")
    if priority is None:
        return PlanEntry(content, status)
    return PlanEntry(content, status, _choice(PlanPriority, priority, f"{where}: 'priority'"))


def _choice(kind: type[_Choice], value: object, where: str) -> _Choice:
    try:
        return kind(value)
    except ValueError:
        names = ", ".join(repr(member.value) for member in kind)
        raise ArgumentError(f"{where} must be one of {names}, not {value!r}") from None


def plan_summary(entries: Sequence[PlanEntry]) -> str:
    """What the model reads back: the counts, and a nudge when it broke the one rule that
    keeps a plan readable (exactly one entry in progress while work remains)."""
    if not entries:
        return "Plan cleared."
    done = sum(entry.status is PlanStatus.COMPLETED for entry in entries)
    active = [entry for entry in entries if entry.status is PlanStatus.IN_PROGRESS]
    if done == len(entries):
        return "Plan updated: every entry completed."
    count = f"{len(entries)} entries" if len(entries) > 1 else "1 entry"
    summary = (
        f"Plan updated: {count}, {done} completed, {len(active)} in progress, "
        f"{len(entries) - done - len(active)} pending."
    )
    if len(active) > 1:
        return (
            f"{summary} Note: keep exactly one entry in progress; mark the others pending "
            "or completed in your next update."
        )
    if not active:
        return f"{summary} Note: mark the entry you work on next in_progress."
    return summary
