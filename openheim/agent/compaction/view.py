"""The model's view of a conversation: its transcript as the latest compaction record says.

Pure functions of the messages and one ``Compaction``; nothing here changes the transcript,
so the history keeps every message and any replica derives the same view from the same
stored records.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from openheim.foundation.models import Compaction, Conversation, Message, Role

NOTE_HEAD = (
    "[openheim: the earlier part of this conversation was compacted to fit the context window]"
)


def latest(conversation: Conversation) -> Compaction | None:
    return conversation.compactions[-1] if conversation.compactions else None


def view(conversation: Conversation) -> list[Message]:
    """What the model is sent of ``conversation`` (without the system prompt)."""
    return render(conversation.messages, latest(conversation))


def render(messages: Sequence[Message], record: Compaction | None) -> list[Message]:
    if record is None:
        return list(messages)
    upto = start_of_view(messages, record.upto)
    elided = set(record.elided)
    truncated = dict(record.truncated)
    shown: list[Message] = []
    if upto > 0:
        shown.append(Message.user(note(record.summary, upto, record.dropped)))
    for index in range(upto, len(messages)):
        message = messages[index]
        if index in elided and message.role is Role.TOOL:
            message = attrs.evolve(message, content=stub(message), images=())
        elif index in truncated:
            message = attrs.evolve(message, content=cut(message.content, truncated[index]))
        shown.append(message)
    return shown


def start_of_view(messages: Sequence[Message], upto: int) -> int:
    """``upto``, moved past tool results so no result is shown without its call (a record
    written by hand, or one older than a transcript that was edited, must not break pairs)."""
    upto = max(0, min(upto, len(messages)))
    while upto < len(messages) and messages[upto].role is Role.TOOL:
        upto += 1
    return upto


def note(summary: str | None, replaced: int, dropped: int) -> str:
    """The message that stands for the replaced messages; it says what the model lost."""
    parts = [NOTE_HEAD]
    if summary:
        parts.append(f"Summary of the earlier conversation:\n{summary}")
    if dropped:
        parts.append(
            f"{dropped} earlier message{'s' if dropped != 1 else ''} were removed without a "
            "summary; ask the user if you need something from them."
        )
    elif not summary:
        parts.append(f"{replaced} earlier messages were removed.")
    return "\n\n".join(parts)


def stub(message: Message) -> str:
    size = len((message.content or "").encode())
    images = f" and {len(message.images)} image(s)" if message.images else ""
    return f"[output of {message.tool_name or 'a tool'}, {size} bytes{images}, elided]"


def cut(content: str | None, keep: int) -> str:
    """``content`` cut to about ``keep`` characters, head and tail kept, with a visible note."""
    text = content or ""
    if len(text) <= keep:
        return text
    head = keep * 2 // 3
    tail = keep - head
    removed = len(text) - keep
    marker = f"\n[openheim: {removed} characters cut here to fit the context window]\n"
    return text[:head] + marker + (text[-tail:] if tail else "")


def boundaries(messages: Sequence[Message], start: int) -> list[int]:
    """Where a view may begin, after ``start``: at a user message or an assistant message,
    never at a tool result (a call and its result stay together), never past the last
    message."""
    return [
        index
        for index in range(max(start, 1), len(messages))
        if messages[index].role in (Role.USER, Role.ASSISTANT)
    ]
