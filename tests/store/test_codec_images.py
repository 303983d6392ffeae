"""Images in the history document: written only when present, read back, old files unchanged."""

from __future__ import annotations

from openheim.foundation.models import (
    Conversation,
    ImagePart,
    Message,
    Prompt,
    ToolCall,
    ToolResult,
)
from openheim.store import codec


def test_images_round_trip_and_text_only_messages_are_written_as_before() -> None:
    conversation = Conversation(id="c")
    conversation.append(Message.user(Prompt("look", (ImagePart("image/png", "iVBORw=="),))))
    conversation.append(Message.assistant(None, (ToolCall("t1", "shot"),)))
    conversation.append(
        Message.tool(ToolCall("t1", "shot"), ToolResult("", images=(ImagePart("image/gif", "R0"),)))
    )
    conversation.append(Message.assistant("done"))
    document = codec.to_document(conversation)
    messages = document["messages"]
    assert messages[0]["images"] == [{"mime_type": "image/png", "data": "iVBORw=="}]
    assert messages[2]["images"] == [{"mime_type": "image/gif", "data": "R0"}]
    assert "images" not in messages[1] and "images" not in messages[3]
    assert codec.from_document(document).messages == conversation.messages


def test_a_document_from_before_images_loads() -> None:
    document = {
        "schema_version": 1,
        "meta": {
            "id": "old",
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:00Z",
            "skills": [],
        },
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    }
    messages = codec.from_document(document).messages
    assert messages == [Message.user("hi"), Message.assistant("yo")]
