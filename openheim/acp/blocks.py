"""ACP content blocks and message chunks: the small payloads every face sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openheim.foundation.models import ImagePart


def session_update(session_id: str, update: Mapping[str, Any]) -> dict[str, Any]:
    """The params of a ``session/update`` notification."""
    return {"sessionId": session_id, "update": update}


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_block(image: ImagePart) -> dict[str, Any]:
    return {"type": "image", "mimeType": image.mime_type, "data": image.data}


def agent_chunk(text: str) -> dict[str, Any]:
    return {"sessionUpdate": "agent_message_chunk", "content": text_block(text)}


def thought_chunk(text: str) -> dict[str, Any]:
    return {"sessionUpdate": "agent_thought_chunk", "content": text_block(text)}


def user_chunk(text: str) -> dict[str, Any]:
    return {"sessionUpdate": "user_message_chunk", "content": text_block(text)}
