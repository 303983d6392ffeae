"""Prompt content read into openheim's: ``session/prompt`` blocks to text and images, no I/O.

Its own module beside ``schema`` (which re-exports ``prompt_text``) to keep each one short.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openheim.acp.codec import invalid_params
from openheim.foundation.errors import ImageError
from openheim.foundation.models import ImagePart, Prompt, check_image, check_image_count


def prompt_text(blocks: Any) -> Prompt:
    """The text and images of a ``session/prompt``; raises ``-32602`` for content we did not
    advertise or cannot send (an image too large, of another type, or too many)."""
    if not isinstance(blocks, list) or not blocks:
        raise invalid_params("prompt must be a non-empty array of content blocks")
    images = tuple(_image(block) for block in blocks if _is_image(block))
    parts = [_block_text(block) for block in blocks if not _is_image(block)]
    text = "\n".join(part for part in parts if part)
    if not text.strip() and not images:
        raise invalid_params("prompt has no text")
    try:
        text.encode("utf-8")
        check_image_count(len(images))
    except UnicodeEncodeError:  # a JSON "\ud800": no provider or history file can take it
        raise invalid_params("prompt text is not valid Unicode (a lone surrogate)") from None
    except ImageError as error:
        raise invalid_params(str(error)) from None
    return Prompt(text, images)


def _is_image(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "image"


def _image(block: Mapping[str, Any]) -> ImagePart:
    data, mime_type = block.get("data"), block.get("mimeType")
    if not isinstance(data, str) or not isinstance(mime_type, str):
        raise invalid_params('an "image" content block needs string "data" and "mimeType"')
    try:
        return check_image(mime_type, data)
    except ImageError as error:
        raise invalid_params(str(error)) from None


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        raise invalid_params("each prompt content block must be an object")
    kind = block.get("type")
    if kind == "text":
        return _field(block, "text", "text")
    if kind == "resource_link":
        return _resource_link(block)
    if kind == "resource":
        return _embedded_resource(block.get("resource"))
    if kind == "audio":
        raise invalid_params(f"{kind} content is not supported: promptCapabilities.{kind} is false")
    raise invalid_params(f"unknown content block type {kind!r}")


def _field(block: Mapping[str, Any], name: str, kind: str) -> str:
    value = block.get(name)
    if not isinstance(value, str):
        raise invalid_params(f'a "{kind}" content block needs a string "{name}"')
    return value


def _resource_link(block: Mapping[str, Any]) -> str:
    uri = _field(block, "uri", "resource_link")
    name = block.get("name") if isinstance(block.get("name"), str) else None
    details = [f"{key}: {block[key]}" for key in ("mimeType", "size") if block.get(key)]
    label = f"{name} <{uri}>" if name and name != uri else uri
    suffix = f" ({', '.join(details)})" if details else ""
    return f"[Resource: {label}{suffix}]"


def _embedded_resource(resource: Any) -> str:
    if not isinstance(resource, dict):
        raise invalid_params('a "resource" content block needs a "resource" object')
    uri = _field(resource, "uri", "resource")
    text = resource.get("text")
    if isinstance(text, str):
        fence = "```"
        while fence in text:
            fence += "`"
        body = text if text.endswith("\n") else text + "\n"
        return f"{uri}:\n{fence}\n{body}{fence}"
    mime = resource.get("mimeType")
    kind = f"{mime} " if isinstance(mime, str) else ""
    return f"[Embedded {kind}resource {uri}: binary content, not shown]"
