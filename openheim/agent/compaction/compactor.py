"""When to compact, and the ladder run in order: elide, summarise, drop, truncate.

The threshold is ``compact_at`` of what the prompt may hold (the window less the reply's
tokens). Elision and cuts aim well below it (the conversation's share is cut to
``TARGET_RATIO``), so the turns after a compaction do not compact again at once; truncation,
which loses text for good, only goes as far as the threshold. Each step is taken only if it
makes the view strictly smaller, and the last one only while it can, so a run always ends;
when nothing shrinks the view the request goes out as it is and the provider's answer decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import attrs

from openheim.agent.compaction import steps
from openheim.agent.compaction.measure import Meter, text_units
from openheim.agent.compaction.summarise import Summary
from openheim.agent.compaction.view import NOTE_HEAD, latest, render, start_of_view
from openheim.foundation.models import Compaction, CompactionMethod, Conversation, Message, Usage

DEFAULT_COMPACT_AT = 0.8
#: A compaction aims at this share of the room the conversation has under the threshold
#: (what the system prompt and the tool definitions leave).
TARGET_RATIO = 0.6
#: Tool outputs of the current turn, and of the last few model steps, are never elided.
KEEP_TURNS = 1
KEEP_ROUNDS = 4
#: How severe each step is; a run is named after the most severe step it took.
_SEVERITY = {
    CompactionMethod.ELIDE: 0,
    CompactionMethod.SUMMARY: 1,
    CompactionMethod.DROP: 2,
    CompactionMethod.TRUNCATE: 3,
}

#: Asks for a summary of ``previous`` plus these messages, with at most ``max_chars`` of
#: input per request and ``max_tokens`` of reply; ``None`` when it could not.
Summariser = Callable[[str | None, Sequence[Message], int, int], Awaitable[Summary | None]]


@attrs.frozen
class CompactionSettings:
    """One model's window and when to compact in it."""

    window: int
    compact_at: float = DEFAULT_COMPACT_AT
    #: The reply's ``max_tokens``; unset, a quarter of the window (at most 4096) is kept for it.
    reply_tokens: int | None = None

    @property
    def prompt_room(self) -> int:
        reserve = self.reply_tokens or min(4096, self.window // 4)
        return max(self.window - reserve, self.window // 4)

    @property
    def threshold(self) -> int:
        """Prompt tokens past which the next request is compacted first."""
        return int(self.compact_at * self.prompt_room)

    def target(self, fixed_tokens: int) -> int:
        """Where a compaction aims, given the tokens of what every request holds."""
        return fixed_tokens + int(TARGET_RATIO * max(0, self.threshold - fixed_tokens))

    def summary_tokens(self, fixed_tokens: int) -> int:
        """The summary's reply bound: small beside the room, so a summary saves some."""
        return max(128, min(2048, (self.threshold - fixed_tokens) // 6))

    @property
    def summary_input_chars(self) -> int:
        """Input per summary request: half the prompt room at a dense 3 chars per token."""
        return max(2048, self.prompt_room * 3 // 2)


@attrs.frozen
class Outcome:
    """A compaction made: the record to append, and what the summariser's requests cost."""

    record: Compaction
    usage: Usage = attrs.field(factory=Usage)


@attrs.frozen
class Request:
    """What the next request holds besides the conversation's view."""

    model: str
    #: Units of the system prompt and tool definitions (``measure``).
    fixed: float


async def compact(
    conversation: Conversation,
    request: Request,
    *,
    meter: Meter,
    settings: CompactionSettings,
    summariser: Summariser | None,
    force: bool = False,
    manual: bool = False,
) -> Outcome | None:
    """A smaller view's record when the next request passes the threshold (or ``force``),
    else ``None``; ``None`` too when no step can shrink the view. Changes nothing itself.

    ``manual`` (the user's ``/compact``) runs whatever the size and aims the cuts at half
    of it as well; truncation still goes no further than the threshold.
    """
    messages = conversation.messages
    record = latest(conversation) or steps.EMPTY
    fixed = request.fixed

    def size(candidate: Compaction) -> float:
        return steps.units_of(messages, candidate, fixed)

    current = size(record)
    before = meter.measure(current, request.model)
    if not (force or manual) and before <= settings.threshold:
        return None
    fixed_tokens = meter.estimate(fixed)
    aim = settings.target(fixed_tokens)
    target = meter.units_for(min(aim, before // 2) if manual else aim, request.model)
    floor = meter.units_for(settings.threshold, request.model)
    summary_tokens = settings.summary_tokens(fixed_tokens)
    taken: list[CompactionMethod] = []
    candidate = record
    usage = Usage()

    def take(step: Compaction | None, method: CompactionMethod) -> bool:
        nonlocal candidate, current
        if step is None or (units := size(step)) >= current:
            return False
        candidate, current = step, units
        taken.append(method)
        return True

    protect = steps.protected_start(messages, KEEP_TURNS, KEEP_ROUNDS)
    take(steps.elide(messages, candidate, protect), CompactionMethod.ELIDE)
    if current > target:
        note_units = text_units(NOTE_HEAD) + summary_tokens / meter.scale
        upto = steps.choose_cut(
            messages, candidate, fixed=fixed, target=target, note_units=note_units
        )
        if upto is not None:
            summary = None
            if summariser is not None:
                start = start_of_view(messages, candidate.upto)
                old = render(messages, attrs.evolve(record, upto=0))[start:upto]
                summary = await summariser(
                    candidate.summary, old, settings.summary_input_chars, summary_tokens
                )
            if summary is not None:
                usage = summary.usage
                took = take(
                    steps.summarised(candidate, upto, summary.text), CompactionMethod.SUMMARY
                )
            else:
                took = False
            if not took:
                take(
                    steps.dropped(messages, candidate, upto, keep_summary=True),
                    CompactionMethod.DROP,
                )
        if current > target and candidate.summary:
            # Even the summary is more than the window allows now: let it go too.
            step = steps.dropped(messages, candidate, candidate.upto, keep_summary=False)
            take(step, CompactionMethod.DROP)
    while current > floor:
        step = steps.truncate(messages, candidate, fixed=fixed, target=floor)
        if not take(step, CompactionMethod.TRUNCATE):
            break
    if not taken:
        return None
    method = max(taken, key=_SEVERITY.__getitem__)
    after = meter.measure(current, request.model)
    made = steps.finished(
        candidate, at=len(messages), method=method, tokens_before=before, tokens_after=after
    )
    return Outcome(made, usage)
