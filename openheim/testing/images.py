"""The images a recorded request carried, read back from any dialect's wire format.

Tests assert on these rather than on each provider's JSON: an OpenAI ``image_url`` data URL,
a Responses ``input_image``, an Anthropic ``image`` block (also inside a ``tool_result``) and
a Gemini ``inlineData`` part all come back as one ``SentImage``. Each also checks the shape
the real API requires, so an encoder that gets it wrong fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs

from openheim.testing.script import RecordedRequest

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>[A-Za-z0-9+/=]+)")
#: The image types Anthropic's API accepts in a base64 source.
ANTHROPIC_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@attrs.frozen
class SentImage:
    """One image as sent: ``role`` of the message holding it (``user``, ``tool``) and, for a
    tool result, the call it answered."""

    role: str
    mime_type: str
    data: str
    tool_call_id: str | None = None


def sent_images(request: RecordedRequest) -> list[SentImage]:
    """Every image in ``request``, in order; an ``AssertionError`` names a malformed one."""
    body = request.body
    if not isinstance(body, dict):
        return []
    if "contents" in body:
        return list(_gemini(body["contents"]))
    if request.path.endswith("/responses"):
        return list(_responses(body.get("input", [])))
    if request.path.endswith("/messages"):
        return list(_anthropic(body.get("messages", [])))
    return list(_openai(body.get("messages", [])))


def _openai(messages: list[Any]) -> Iterator[SentImage]:
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        if message.get("role") != "user":
            raise AssertionError(f"content parts in a {message.get('role')} message")
        for part in content:
            if part.get("type") != "image_url":
                continue
            match = _DATA_URL.fullmatch(part.get("image_url", {}).get("url", ""))
            if match is None:
                raise AssertionError(f"image_url is not a base64 data URL: {part!r:.80}")
            yield SentImage("user", match["mime"], match["data"])


def _responses(items: list[Any]) -> Iterator[SentImage]:
    """``input_image`` parts of user messages; a tool's images come in one after its result."""
    for item in items:
        content = item.get("content") if item.get("type", "message") == "message" else None
        if not isinstance(content, list):
            continue
        for part in content:
            if part.get("type") != "input_image":
                continue
            if item.get("role") != "user":
                raise AssertionError(f"an input_image in a {item.get('role')} message")
            match = _DATA_URL.fullmatch(part.get("image_url", ""))
            if match is None:
                raise AssertionError(f"image_url is not a base64 data URL: {part!r:.80}")
            yield SentImage("user", match["mime"], match["data"])


def _anthropic(messages: list[Any]) -> Iterator[SentImage]:
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if block.get("type") == "image":
                yield _anthropic_image(block, message.get("role", ""), None)
            elif block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                for inner in block["content"]:
                    if inner.get("type") == "image":
                        yield _anthropic_image(inner, "tool", block.get("tool_use_id"))


def _anthropic_image(block: dict[str, Any], role: str, call_id: str | None) -> SentImage:
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        raise AssertionError("image.source must be {type: base64, media_type, data}")
    if source.get("media_type") not in ANTHROPIC_MEDIA_TYPES:
        raise AssertionError(
            f"image.source.media_type {source.get('media_type')!r} is not accepted"
        )
    if role != "user" and role != "tool":
        raise AssertionError(f"an image block in a {role} message")
    return SentImage(role, source["media_type"], str(source.get("data")), call_id)


def _gemini(contents: list[Any]) -> Iterator[SentImage]:
    for content in contents:
        parts = content.get("parts", [])
        is_result = any("functionResponse" in part for part in parts)
        for part in parts:
            inline = part.get("inlineData")
            if inline is None:
                continue
            if not isinstance(inline.get("mimeType"), str) or not isinstance(
                inline.get("data"), str
            ):
                raise AssertionError("inlineData needs string mimeType and data")
            yield SentImage("tool" if is_result else "user", inline["mimeType"], inline["data"])
