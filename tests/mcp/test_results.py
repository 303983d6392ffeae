"""What the model gets of an MCP tool result's images (``openheim.mcp.results``)."""

from __future__ import annotations

import base64

from mcp_types import CallToolResult, ImageContent, TextContent

from openheim.foundation.models import MAX_IMAGES, ImagePart
from openheim.mcp.results import to_tool_result

PNG = base64.b64encode(b"\x89PNG").decode()


def image(mime_type: str = "image/png", data: str = PNG) -> ImageContent:
    return ImageContent(type="image", mime_type=mime_type, data=data)


def test_images_become_image_parts_beside_the_text() -> None:
    raw = CallToolResult(content=[TextContent(type="text", text="shot"), image()])
    result = to_tool_result(raw)
    assert result.content == "shot" and result.images == (ImagePart("image/png", PNG),)


def test_an_image_a_model_cannot_take_becomes_a_note() -> None:
    big = base64.b64encode(b"\0" * (5 * 1024 * 1024 + 3)).decode()
    raw = CallToolResult(content=[image("image/tiff"), image(data=big)])
    result = to_tool_result(raw)
    assert result.images == ()
    notes = result.content.splitlines()
    assert notes[0].startswith("[image omitted: image/tiff is not an image type models take")
    assert notes[1].startswith("[image omitted: the image/png image is 5.0 MB, over the 5.0 MB")


def test_images_beyond_the_cap_are_noted() -> None:
    raw = CallToolResult(content=[image() for _ in range(MAX_IMAGES + 1)])
    result = to_tool_result(raw)
    assert len(result.images) == MAX_IMAGES
    assert result.content == f"[image omitted: more than {MAX_IMAGES} images in one result]"
