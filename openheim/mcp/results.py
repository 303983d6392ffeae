"""What the model sees of an MCP tool result.

Its own module so the actor, which makes the calls, need not import ``mcp.tools``, which
wraps the actor as our ``Tool`` (the two used to import each other).
"""

from __future__ import annotations

import json
from typing import Any

from openheim.foundation.errors import ImageError
from openheim.foundation.models import MAX_IMAGES, ImagePart, ToolResult, check_image


def to_tool_result(result: Any) -> ToolResult:
    """Text and images for the model: text joined, images kept (an image a model cannot take
    becomes a note saying why), audio noted, resources inlined, errors flagged."""
    parts: list[str] = []
    images: list[ImagePart] = []
    for item in result.content or ():
        kind = getattr(item, "type", None)
        if kind == "text":
            parts.append(item.text)
        elif kind == "image":
            try:
                if len(images) >= MAX_IMAGES:
                    raise ImageError(f"more than {MAX_IMAGES} images in one result")
                images.append(check_image(item.mime_type, item.data))
            except ImageError as error:
                parts.append(f"[image omitted: {error}]")
        elif kind == "audio":
            size = len(item.data) * 3 // 4  # base64
            parts.append(f"[{kind}: {item.mime_type}, {size} bytes]")
        elif kind == "resource":
            resource = item.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource: {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource: {item.uri}]")
        else:
            parts.append(f"[{kind} content]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return ToolResult("\n".join(parts), is_error=bool(result.is_error), images=tuple(images))
