"""Image parts per provider: each dialect's request as the fake LLM's checks and reader see it,
the vision capability and its defaults, and the caps on what an image may be."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

import pytest

from openheim.config.load import parse_config
from openheim.config.model import ProviderConfig, ProviderKind
from openheim.foundation.errors import ConfigError, ImageError
from openheim.foundation.models import (
    MAX_IMAGES,
    ImagePart,
    Message,
    Prompt,
    ToolCall,
    ToolResult,
    check_image,
    check_image_count,
)
from openheim.providers.anthropic import AnthropicDialect
from openheim.providers.base import ChatRequest
from openheim.providers.gemini import GeminiDialect
from openheim.providers.openai import OpenAIDialect
from openheim.providers.vision import family_takes_images, fit_to_model, takes_images
from openheim.testing import RecordedRequest, SentImage, sent_images
from openheim.testing.anthropic_wire import AnthropicMessagesDialect
from openheim.testing.gemini_wire import GeminiGenerateContentDialect
from openheim.testing.openai_wire import OpenAIChatDialect

PNG = base64.b64encode(b"\x89PNG fake image").decode()
JPEG = base64.b64encode(b"\xff\xd8 fake jpeg").decode()
CALL = ToolCall("call_1", "shots__screenshot", "{}")
CALL_2 = ToolCall("call_2", "echo", '{"text": "x"}')

#: A prompt with an image, a call answered with an image, a parallel text-only result.
MESSAGES = (
    Message.user(Prompt("What is on screen?", (ImagePart("image/png", PNG),))),
    Message.assistant(None, (CALL, CALL_2)),
    Message.tool(CALL, ToolResult("the screen", images=(ImagePart("image/jpeg", JPEG),))),
    Message.tool(CALL_2, ToolResult("x")),
)


def recorded(path: str, body: object, headers: Mapping[str, str] | None = None) -> RecordedRequest:
    lowered = {key.lower(): value for key, value in (headers or {}).items()}
    return RecordedRequest("POST", path, lowered, body, 0.0)


def test_openai_sends_data_urls_and_tool_images_in_a_user_message_after_the_results() -> None:
    http = OpenAIDialect("http://x/v1").build_request(ChatRequest("gpt-4o", MESSAGES), None)
    request = recorded("/v1/chat/completions", http.json)
    assert OpenAIChatDialect().check(request) is None
    messages = http.json["messages"]
    assert messages[0]["content"] == [
        {"type": "text", "text": "What is on screen?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    # Both tool results first (every call answered right after its assistant message) ...
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user"]
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "the screen"}
    # ... then the images they returned.
    assert messages[4]["content"][0]["text"] == (
        "[1 image from the result of shots__screenshot (call_1)]"
    )
    assert sent_images(request) == [
        SentImage("user", "image/png", PNG),
        SentImage("user", "image/jpeg", JPEG),
    ]


def test_openai_text_only_messages_are_unchanged() -> None:
    plain = (Message.user("hi"),)
    http = OpenAIDialect("http://x/v1").build_request(ChatRequest("gpt-4o", plain), None)
    assert http.json["messages"] == [{"role": "user", "content": "hi"}]


def test_anthropic_sends_image_blocks_also_inside_tool_results() -> None:
    http = AnthropicDialect("http://x/v1").build_request(
        ChatRequest("claude-sonnet-4", MESSAGES), None
    )
    request = recorded("/v1/messages", http.json, http.headers)
    assert AnthropicMessagesDialect().check(request) is None
    first = http.json["messages"][0]["content"]
    assert first == [
        {"type": "text", "text": "What is on screen?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]
    result = http.json["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["content"][0] == {
        "type": "text",
        "text": "the screen",
    }
    assert sent_images(request) == [
        SentImage("user", "image/png", PNG),
        SentImage("tool", "image/jpeg", JPEG, "call_1"),
    ]


def test_gemini_sends_inline_data_after_the_function_responses() -> None:
    http = GeminiDialect("http://x/v1beta").build_request(
        ChatRequest("gemini-2.5-flash", MESSAGES), None
    )
    request = recorded("/v1beta/models/gemini-2.5-flash:streamGenerateContent", http.json)
    checker = GeminiGenerateContentDialect(require_thought_signatures=False)
    assert checker.check(request) is None
    contents = http.json["contents"]
    assert contents[0]["parts"] == [
        {"text": "What is on screen?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
    ]
    kinds = [next(iter(part)) for part in contents[2]["parts"]]
    assert kinds == ["functionResponse", "functionResponse", "inlineData"]
    assert sent_images(request) == [
        SentImage("user", "image/png", PNG),
        SentImage("tool", "image/jpeg", JPEG),
    ]


def provider(kind: ProviderKind, **options: object) -> ProviderConfig:
    return ProviderConfig(
        name="p", kind=kind, api_base="http://x", default_model="m", models=("m",), **options
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "model", "expected"),
    [
        (ProviderKind.OPENAI, "gpt-4o-mini", True),
        (ProviderKind.OPENAI, "gpt-5", True),
        (ProviderKind.OPENAI, "gpt-3.5-turbo", False),
        (ProviderKind.OPENAI, "o3-mini", False),
        (ProviderKind.OPENAI_RESPONSES, "gpt-5-codex", True),
        (ProviderKind.ANTHROPIC, "claude-sonnet-4-5", True),
        (ProviderKind.ANTHROPIC, "claude-2.1", False),
        (ProviderKind.GEMINI, "gemini-2.5-pro", True),
        (ProviderKind.OPENAI_COMPATIBLE, "llama3.1:8b", False),
        (ProviderKind.OPENAI_COMPATIBLE, "llava:13b", True),
        (ProviderKind.OPENAI_COMPATIBLE, "qwen2.5-vl-7b", True),
    ],
)
def test_vision_defaults_follow_the_model_family(
    kind: ProviderKind, model: str, expected: bool
) -> None:
    assert family_takes_images(kind, model) is expected


def test_vision_config_overrides_the_family() -> None:
    local = provider(ProviderKind.OPENAI_COMPATIBLE, vision_models=("my-vlm",))
    assert takes_images(local, "my-vlm") and not takes_images(local, "llama3")
    assert takes_images(provider(ProviderKind.OPENAI_COMPATIBLE, vision=True), "llama3")
    off = provider(ProviderKind.OPENAI, vision=False, vision_models=("gpt-4o",))
    assert not takes_images(off, "gpt-4.1") and takes_images(off, "gpt-4o")


def test_a_model_without_vision_gets_a_note_in_place_of_each_image() -> None:
    request = fit_to_model(ChatRequest("gpt-3.5-turbo", MESSAGES), provider(ProviderKind.OPENAI))
    note = "[image omitted: model gpt-3.5-turbo does not take images]"
    assert request.messages[0] == Message.user(f"What is on screen?\n{note}")
    assert request.messages[2].content == f"the screen\n{note}"
    assert not any(message.images for message in request.messages)
    seeing = ChatRequest("gpt-4o", MESSAGES)
    assert fit_to_model(seeing, provider(ProviderKind.OPENAI)) is seeing


def test_vision_keys_are_read_from_the_config() -> None:
    text = """
default_provider = "local"

[providers.local]
kind = "openai_compatible"
api_base = "http://localhost:11434/v1"
default_model = "llava"
vision = false
vision_models = ["llava"]
"""
    config = parse_config(text, Path("config.toml"))
    local = config.providers["local"]
    assert local.vision is False and local.vision_models == ("llava",)
    with pytest.raises(ConfigError, match="vision"):
        parse_config(text.replace("vision = false", 'vision = "yes"'), Path("config.toml"))


def test_images_are_checked_for_type_size_and_count() -> None:
    assert check_image("image/JPG", JPEG) == ImagePart("image/jpeg", JPEG)
    with pytest.raises(ImageError, match="image/svg\\+xml is not an image type models take"):
        check_image("image/svg+xml", PNG)
    with pytest.raises(ImageError, match="not valid base64"):
        check_image("image/png", "not base64!")
    big = base64.b64encode(b"\0" * (6 * 1024 * 1024)).decode()
    with pytest.raises(ImageError, match="6.0 MB, over the 5.0 MB limit; fix: "):
        check_image("image/png", big)
    check_image_count(MAX_IMAGES)
    with pytest.raises(ImageError, match=f"over the limit of {MAX_IMAGES}"):
        check_image_count(MAX_IMAGES + 1)
