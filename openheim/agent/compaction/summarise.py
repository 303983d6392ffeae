"""Ask the model for a summary of the oldest part of a conversation: the ladder's I/O edge.

The input is bounded: the old part is written out as plain text and sent in chunks that each
fit ``max_chars``, the summary so far going along with the next chunk (progressive). Any
failure (a provider error, an empty answer) returns ``None`` and the ladder drops instead;
a cancel propagates, and since nothing was recorded yet the conversation is unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs

from openheim.agent.compaction.view import cut
from openheim.foundation.errors import ProviderError
from openheim.foundation.models import Message, Role, Usage
from openheim.providers.base import ChatRequest, ProviderEvent, StreamEnd

SUMMARY_PROMPT = """You compact a conversation between a user and a coding agent so the agent \
can go on with less context. Write a concise summary of the transcript you are given, in the \
transcript's language: the user's goals and requests, decisions made, facts learnt (file \
paths, names, commands, results, errors), what was done and what is still open. Keep \
identifiers exact. If a summary of an earlier part is given, fold it in. Answer with the \
summary only."""


class ChatProvider(Protocol):
    def stream(
        self, request: ChatRequest
    ) -> AbstractAsyncContextManager[AsyncIterator[ProviderEvent]]: ...


@attrs.frozen
class Summary:
    text: str
    usage: Usage


def transcript_lines(messages: Sequence[Message], max_chars: int) -> list[str]:
    """Each message as one block of text, none longer than ``max_chars``."""
    lines = []
    for message in messages:
        if message.role is Role.TOOL:
            head = f"TOOL RESULT ({message.tool_name or 'tool'})"
        else:
            head = message.role.value.upper()
        body = message.content or ""
        for call in message.tool_calls:
            body += f"\n[calls {call.name}({call.arguments})]"
        if message.images:
            body += f"\n[{len(message.images)} image(s)]"
        lines.append(cut(f"{head}: {body.strip()}", max(1, max_chars)))
    return lines


def chunks(lines: Sequence[str], max_chars: int) -> list[str]:
    """``lines`` grouped into chunks of at most ``max_chars`` (a line never splits)."""
    grouped: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if grouped[-1] and size + len(line) > max_chars:
            grouped.append([])
            size = 0
        grouped[-1].append(line)
        size += len(line) + 2
    return ["\n\n".join(group) for group in grouped if group]


async def summarise(
    provider: ChatProvider,
    model: str,
    previous: str | None,
    messages: Sequence[Message],
    *,
    max_chars: int,
    max_tokens: int,
) -> Summary | None:
    """A summary of ``previous`` plus ``messages``, each request's input under ``max_chars``
    (the summary so far included); ``None`` when the provider fails or says nothing."""
    summary = previous
    usage = Usage()
    asked = False
    room = max_chars - (len(previous) if previous else 0)
    lines = transcript_lines(messages, max(room // 2, max_chars // 4))
    for chunk in chunks(lines, max(room // 2, max_chars // 4)):
        earlier = f"Summary of the part before:\n{summary}\n\n" if summary else ""
        request = ChatRequest(
            model=model,
            messages=(
                Message.system(SUMMARY_PROMPT),
                Message.user(f"{earlier}Transcript to summarise:\n\n{chunk}"),
            ),
            max_tokens=max_tokens,
        )
        try:
            end = await _ask(provider, request)
        except ProviderError:
            return None
        if end is None or not end.text.strip():
            return None
        if end.usage is not None:
            usage += end.usage
        summary = end.text.strip()
        asked = True
    return Summary(summary, usage) if asked and summary else None


async def _ask(provider: ChatProvider, request: ChatRequest) -> StreamEnd | None:
    async with provider.stream(request) as stream:
        async for event in stream:
            if isinstance(event, StreamEnd):
                return event
    return None
