"""The compaction ladder's steps: pure functions from (transcript, record) to a smaller record.

Each step returns a new whole ``Compaction`` record (the view it describes is smaller) or
``None`` when it has nothing to take away. Sizes are in *units*, the meter's unscaled token
estimate (``measure``): the caller converts its token target into units once, so a step is a
plain comparison of numbers and "strictly smaller" means the same thing at every scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from openheim.agent.compaction.measure import (
    DENSE_CHARS_PER_TOKEN,
    PROSE_CHARS_PER_TOKEN,
    message_units,
)
from openheim.agent.compaction.view import boundaries, cut, render, start_of_view, stub
from openheim.foundation.models import Compaction, CompactionMethod, Message, Role

#: The least of a truncated message that stays: enough to see what it was.
MIN_KEPT_CHARS = 400
#: Room for the truncation marker ``view.cut`` adds.
MARKER_CHARS = 80

EMPTY = Compaction(at=0, method=CompactionMethod.ELIDE, tokens_before=0, tokens_after=0)


def units_of(messages: Sequence[Message], record: Compaction, fixed: float) -> float:
    """The units of a request showing ``record``'s view, plus ``fixed`` (system, tools)."""
    return fixed + sum(message_units(message) for message in render(messages, record))


def protected_start(messages: Sequence[Message], keep_turns: int, keep_rounds: int) -> int:
    """Where the recent part begins: the later of the last ``keep_turns`` user turns' start
    and the last ``keep_rounds`` model steps' start, so one long tool loop still has old
    outputs to elide."""
    users = [i for i, m in enumerate(messages) if m.role is Role.USER]
    rounds = [i for i, m in enumerate(messages) if m.role is Role.ASSISTANT]
    turn_start = users[-keep_turns] if len(users) >= keep_turns else 0
    round_start = rounds[-keep_rounds] if len(rounds) >= keep_rounds else 0
    return max(turn_start, round_start)


def elide(messages: Sequence[Message], record: Compaction, protect_from: int) -> Compaction | None:
    """Step 1: tool outputs before ``protect_from`` become stubs (where a stub is shorter)."""
    start = start_of_view(messages, record.upto)
    elided = set(record.elided)
    fresh = [
        index
        for index in range(start, min(protect_from, len(messages)))
        if messages[index].role is Role.TOOL
        and index not in elided
        and (
            len(stub(messages[index])) < len(messages[index].content or "")
            or messages[index].images
        )
    ]
    if not fresh:
        return None
    truncated = tuple((i, keep) for i, keep in record.truncated if i not in fresh)
    return attrs.evolve(record, elided=tuple(sorted(elided | set(fresh))), truncated=truncated)


def choose_cut(
    messages: Sequence[Message],
    record: Compaction,
    *,
    fixed: float,
    target: float,
    note_units: float,
) -> int | None:
    """Step 2 and 3's cut: the earliest boundary past the current one whose kept part, with a
    note of ``note_units``, fits ``target``; else the latest boundary (keep only the last
    step, and let truncation do the rest). ``None`` when no boundary is left to cut at."""
    start = start_of_view(messages, record.upto)
    candidates = boundaries(messages, start + 1)
    if not candidates:
        return None
    shown = render(messages, attrs.evolve(record, upto=0))  # same indexes as ``messages``
    sizes = [message_units(message) for message in shown]
    suffix = [0.0] * (len(sizes) + 1)
    for index in range(len(sizes) - 1, -1, -1):
        suffix[index] = suffix[index + 1] + sizes[index]
    for candidate in candidates:
        if fixed + note_units + suffix[candidate] <= target:
            return candidate
    return candidates[-1]


def summarised(record: Compaction, upto: int, summary: str) -> Compaction:
    """Step 2's record: ``messages[:upto]`` replaced by ``summary``."""
    return _cut_at(attrs.evolve(record, upto=upto, summary=summary, dropped=0), upto)


def dropped(
    messages: Sequence[Message], record: Compaction, upto: int, *, keep_summary: bool
) -> Compaction:
    """Step 3's record: ``messages[:upto]`` gone, with a note; the summary of the part before
    the old cut stays when ``keep_summary`` (it is bounded, and the model keeps that much)."""
    start = start_of_view(messages, record.upto)
    if keep_summary and record.summary:
        lost = record.dropped + (upto - start)
        return _cut_at(attrs.evolve(record, upto=upto, dropped=lost), upto)
    return _cut_at(attrs.evolve(record, upto=upto, summary=None, dropped=upto), upto)


def _cut_at(record: Compaction, upto: int) -> Compaction:
    """Forget elisions and truncations of messages the cut replaced."""
    return attrs.evolve(
        record,
        elided=tuple(i for i in record.elided if i >= upto),
        truncated=tuple((i, keep) for i, keep in record.truncated if i >= upto),
    )


def truncate(
    messages: Sequence[Message], record: Compaction, *, fixed: float, target: float
) -> Compaction | None:
    """Step 4: cut the largest shown message's text so the view fits ``target`` (never below
    ``MIN_KEPT_CHARS``); ``None`` when no message can get shorter."""
    excess = units_of(messages, record, fixed) - target
    if excess <= 0:
        return None
    start = start_of_view(messages, record.upto)
    elided = set(record.elided)
    kept = dict(record.truncated)
    shown = render(messages, attrs.evolve(record, upto=0))
    order = sorted(
        (i for i in range(start, len(messages)) if i not in elided),
        key=lambda i: len(shown[i].content or ""),
        reverse=True,
    )
    for index in order:
        message = messages[index]
        length = len(message.content or "")
        now = min(length, kept.get(index, length))
        per_token = DENSE_CHARS_PER_TOKEN if message.role is Role.TOOL else PROSE_CHARS_PER_TOKEN
        keep = max(MIN_KEPT_CHARS, now - math.ceil(excess * per_token) - MARKER_CHARS)
        if keep >= now or len(cut(message.content, keep)) >= len(shown[index].content or ""):
            continue
        kept[index] = keep
        return attrs.evolve(record, truncated=tuple(sorted(kept.items())))
    return None


def finished(
    record: Compaction,
    *,
    at: int,
    method: CompactionMethod,
    tokens_before: int,
    tokens_after: int,
) -> Compaction:
    return attrs.evolve(
        record, at=at, method=method, tokens_before=tokens_before, tokens_after=tokens_after
    )
