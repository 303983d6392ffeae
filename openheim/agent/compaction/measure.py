"""How many tokens a request holds, estimated without a tokenizer.

A tokenizer would be exact for one vendor only, and the one offline-capable candidate
(tiktoken) downloads its encodings on first use, which a sandboxed or air-gapped host cannot
do. So the estimate counts characters (prose about 4 per token, JSON and tool output about 3)
and corrects itself from what the provider reports: the last request's prompt tokens are taken
as they are, and only what was added since is estimated, scaled by the ratio the last report
showed between real tokens and estimated ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import attrs

from openheim.foundation.models import Message, Role, ToolDefinition

PROSE_CHARS_PER_TOKEN = 4.0
#: JSON, code and tool output split into more tokens per character than prose.
DENSE_CHARS_PER_TOKEN = 3.0
#: What an image costs; providers charge roughly 1-2 thousand tokens for a typical one.
IMAGE_TOKENS = 1_600
#: Role markers and framing every message adds.
MESSAGE_OVERHEAD = 4
#: How far a provider's report may move the estimate: a wild report (a proxy that counts
#: nothing) must not make every later estimate useless.
MIN_SCALE = 0.5
MAX_SCALE = 3.0


def text_units(text: str | None, *, dense: bool = False) -> float:
    if not text:
        return 0.0
    return len(text) / (DENSE_CHARS_PER_TOKEN if dense else PROSE_CHARS_PER_TOKEN)


def message_units(message: Message) -> float:
    """Unscaled tokens of one message: tool output and call arguments count as dense."""
    units = MESSAGE_OVERHEAD + text_units(message.content, dense=message.role is Role.TOOL)
    for call in message.tool_calls:
        units += MESSAGE_OVERHEAD + text_units(call.name) + text_units(call.arguments, dense=True)
    if message.reasoning is not None:
        units += text_units(message.reasoning.text) + text_units(message.reasoning.blocks)
    return units + IMAGE_TOKENS * len(message.images)


def tools_units(tools: Iterable[ToolDefinition]) -> float:
    """Tool definitions travel as JSON schemas with every request."""
    return sum(
        text_units(tool.name + tool.description)
        + text_units(json.dumps(tool.parameters), dense=True)
        for tool in tools
    )


def request_units(messages: Iterable[Message], tools: Iterable[ToolDefinition] = ()) -> float:
    return sum(message_units(message) for message in messages) + tools_units(tools)


@attrs.frozen
class _Report:
    model: str
    units: float
    tokens: int


@attrs.define
class Meter:
    """A session's token meter: estimates requests, learns from the provider's reports.

    Not shared between sessions (each holds its own); sans-IO, the loop feeds it.
    """

    scale: float = 1.0
    _last: _Report | None = None

    def estimate(self, units: float) -> int:
        """Tokens of ``units`` at the learnt scale."""
        return math.ceil(units * self.scale)

    def measure(self, units: float, model: str) -> int:
        """Tokens of a request of ``units``: the last reported prompt plus the estimated
        change since (negative after a compaction), or the plain estimate when no report for
        this model exists."""
        last = self._last
        if last is None or last.model != model:
            return self.estimate(units)
        return max(0, last.tokens + math.ceil((units - last.units) * self.scale))

    def observe(self, units: float, tokens: int, model: str) -> None:
        """The provider reported ``tokens`` prompt tokens for a request of ``units``."""
        if tokens <= 0 or units <= 0:
            return  # no report (some servers send none): keep what was learnt
        self.scale = min(MAX_SCALE, max(MIN_SCALE, tokens / units))
        self._last = _Report(model, units, tokens)

    def overflowed(self, units: float, window: int, model: str) -> None:
        """The provider refused a request of ``units`` as longer than ``window``: it held at
        least that many tokens, so the scale rises to say so (and the next estimate with it)."""
        if units <= 0:
            return
        self.scale = min(MAX_SCALE, max(self.scale, (window + 1) / units))
        self._last = _Report(model, units, max(window + 1, math.ceil(units * self.scale)))

    def units_for(self, tokens: int, model: str) -> float:
        """The units a request may have to measure ``tokens`` (``measure`` inverted)."""
        last = self._last
        if last is None or last.model != model:
            return tokens / self.scale
        return last.units + (tokens - last.tokens) / self.scale
