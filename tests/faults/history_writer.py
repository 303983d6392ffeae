"""Saves one large conversation through ``FileHistoryStore`` in a loop, a new version each
time, until it is killed; the SIGKILL row of the fault matrix runs it as a subprocess.

    python history_writer.py FOLDER CONVERSATION_ID LAST_VERSION

Prints ``ready`` once started, then ``saved N`` after version N is on disk. Every message of
version N carries N, so a file mixing two versions would not equal either.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import trio

from openheim.foundation.models import Conversation, Message, ToolCall, ToolResult
from openheim.store.files import FileHistoryStore

EXCHANGES = 60
#: About 30 KB per message, not all ASCII: the whole document is a few MB of UTF-8.
FILLER = "The quick brown fox jumps over the lazy dog; Grüße, ✓. " * 540
CREATED = datetime(2025, 1, 1, tzinfo=UTC)


def conversation(conversation_id: str, version: int) -> Conversation:
    """Version ``version`` of the conversation, the same in every process."""
    conversation = Conversation(id=conversation_id, created_at=CREATED, model="m", provider="p")
    for index in range(EXCHANGES):
        tag = f"v{version} e{index} "
        call = ToolCall(f"call_{index}", "read_file", f'{{"path": "{tag.strip()}.txt"}}')
        conversation.append(Message.user(tag + FILLER))
        conversation.append(Message.assistant(None, (call,)))
        conversation.append(Message.tool(call, ToolResult(tag + FILLER)))
        conversation.append(Message.assistant(tag + FILLER[:2000]))
    return conversation


def version_of(conversation: Conversation) -> int:
    """The version a stored conversation claims to be (its first message says)."""
    first = conversation.messages[0].content or ""
    return int(first.split(" ", 1)[0].removeprefix("v"))


async def main(folder: Path, conversation_id: str, version: int) -> None:
    store = FileHistoryStore(folder)
    print("ready", flush=True)
    while True:
        version += 1
        await store.save(conversation(conversation_id, version))
        print(f"saved {version}", flush=True)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
