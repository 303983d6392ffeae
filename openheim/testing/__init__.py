"""A scripted fake LLM provider server for tests and benchmarks.

Write what the model should answer (``Reply``, ``HttpError``) into a ``Script``, start a real
HTTP server with ``open_fake_llm`` and point a provider at ``server.base_url``::

    async with open_fake_llm([Reply.text("Hello"), Reply.tool_call("echo", {"x": 1})]) as llm:
        ...  # requests to f"{llm.base_url}/chat/completions"; inspect llm.requests

The same script renders in every provider format the server speaks (OpenAI today).
"""

from openheim.testing.images import SentImage, sent_images
from openheim.testing.openai_wire import OpenAIChatDialect
from openheim.testing.script import (
    DEFAULT_USAGE,
    Chunk,
    HttpError,
    RecordedRequest,
    RedactedThinking,
    Reply,
    ReplyOptions,
    Response,
    Script,
    TextChunk,
    ThinkingChunk,
    ToolCallChunk,
    text_chunks,
    thinking_chunks,
    tool_call_chunks,
)
from openheim.testing.script_json import (
    dump_script,
    load_script,
    structure_responses,
    unstructure_responses,
)
from openheim.testing.server import FakeLLMApp, FakeLLMServer, open_fake_llm, serve_fake_llm
from openheim.testing.wire import Dialect

__all__ = [
    "DEFAULT_USAGE",
    "Chunk",
    "Dialect",
    "FakeLLMApp",
    "FakeLLMServer",
    "HttpError",
    "OpenAIChatDialect",
    "RecordedRequest",
    "RedactedThinking",
    "Reply",
    "ReplyOptions",
    "Response",
    "Script",
    "SentImage",
    "TextChunk",
    "ThinkingChunk",
    "ToolCallChunk",
    "dump_script",
    "load_script",
    "open_fake_llm",
    "sent_images",
    "serve_fake_llm",
    "structure_responses",
    "text_chunks",
    "thinking_chunks",
    "tool_call_chunks",
    "unstructure_responses",
]
