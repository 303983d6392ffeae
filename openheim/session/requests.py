"""What travels on a session actor's request channel, and what it answers."""

from __future__ import annotations

import attrs
import trio

from openheim.agent.events import Compacted, TurnFinished
from openheim.foundation.errors import OpenheimError
from openheim.foundation.models import Prompt

#: What the actor answers a request with: a turn's end, a compaction (None: nothing to
#: compact), or the error that stopped it.
RequestAnswer = TurnFinished | Compacted | None | OpenheimError


@attrs.frozen
class PromptRequest:
    text: str | Prompt
    reply: trio.MemorySendChannel[RequestAnswer]


@attrs.frozen
class CompactRequest:
    """``Session.compact``: queued like a prompt, so it never runs beside a turn."""

    reply: trio.MemorySendChannel[RequestAnswer]


#: Anything the actor is asked to do, in its turn.
Request = PromptRequest | CompactRequest
