"""Which models take images, and what a model that does not gets instead.

A prompt or a tool result may carry images; sending them to a text-only model fails the whole
request, so such a model gets a one-line note in their place and the turn goes on. The config
decides (``vision`` and ``vision_models`` under ``[providers.NAME]``); without it the model
family does.
"""

from __future__ import annotations

import attrs

from openheim.config.model import ProviderConfig, ProviderKind
from openheim.foundation.models import Message
from openheim.providers.base import ChatRequest

#: OpenAI models that take images (checked as name prefixes).
_OPENAI_VISION = (
    "gpt-4o",
    "gpt-4.1",
    "gpt-4-turbo",
    "gpt-4-vision",
    "gpt-5",
    "chatgpt-4o",
    "o1",
    "o3",
    "o4",
)
#: OpenAI models under those prefixes that do not.
_OPENAI_TEXT_ONLY = ("o1-mini", "o1-preview", "o3-mini", "gpt-4o-audio", "gpt-4o-realtime")
#: Markers of local (Ollama, vLLM, LM Studio) vision models in a model name.
_LOCAL_VISION = (
    "llava",
    "vision",
    "-vl",
    "vl:",
    "qwen2.5vl",
    "gemma3",
    "pixtral",
    "minicpm-v",
    "moondream",
    "llama4",
)


def takes_images(config: ProviderConfig, model: str) -> bool:
    """Whether ``model`` of this provider may be sent images."""
    if model in config.vision_models:
        return True
    if config.vision is not None:
        return config.vision
    return family_takes_images(config.kind, model)


def family_takes_images(kind: ProviderKind, model: str) -> bool:
    """The default by model family: current hosted models mostly do, local ones mostly not."""
    name = model.lower().rsplit("/", 1)[-1]
    if kind is ProviderKind.ANTHROPIC:
        return not name.startswith(("claude-2", "claude-instant"))
    if kind is ProviderKind.GEMINI:
        return "embedding" not in name
    if kind in (ProviderKind.OPENAI, ProviderKind.OPENAI_RESPONSES):
        return name.startswith(_OPENAI_VISION) and not name.startswith(_OPENAI_TEXT_ONLY)
    return any(marker in name for marker in _LOCAL_VISION)


def omitted_note(model: str) -> str:
    return f"[image omitted: model {model} does not take images]"


def without_images(message: Message, model: str) -> Message:
    """``message`` with each image replaced by a note line in its text."""
    if not message.images:
        return message
    notes = "\n".join(omitted_note(model) for _ in message.images)
    text = f"{message.content}\n{notes}" if message.content else notes
    return attrs.evolve(message, content=text, images=())


def fit_to_model(request: ChatRequest, config: ProviderConfig) -> ChatRequest:
    """The request as this model can take it: images out, with a note, when it takes none."""
    if takes_images(config, request.model) or not any(m.images for m in request.messages):
        return request
    messages = tuple(without_images(message, request.model) for message in request.messages)
    return attrs.evolve(request, messages=messages)
