"""A context window for the fake LLM: count a request's tokens, refuse it like the real APIs.

The count is deterministic and vendor-neutral: a quarter of the characters of the request's
JSON body (messages, system prompt and tool definitions alike). A request over the window gets
each provider's own refusal, status and body as the real API sends them, so a client's error
classification is tested against the real shapes; any other dialect (one added later that
speaks OpenAI's error format) gets OpenAI's.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from openheim.testing.anthropic_wire import AnthropicMessagesDialect
from openheim.testing.gemini_wire import GeminiGenerateContentDialect
from openheim.testing.script import HttpError, Reply, Response
from openheim.testing.wire import Dialect

CHARS_PER_TOKEN = 4


def request_tokens(body: Any) -> int:
    """The fake's token count of a request body."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def overflow_error(dialect: Dialect, tokens: int, window: int) -> HttpError:
    """The refusal of a ``tokens``-token request by a model with a ``window``-token window."""
    if isinstance(dialect, AnthropicMessagesDialect):
        message = f"prompt is too long: {tokens} tokens > {window} maximum"
        body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    elif isinstance(dialect, GeminiGenerateContentDialect):
        message = (
            f"The input token count ({tokens}) exceeds the maximum number of tokens "
            f"allowed ({window})."
        )
        body = {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    else:
        message = (
            f"This model's maximum context length is {window} tokens. However, your "
            f"messages resulted in {tokens} tokens. Please reduce the length of the messages."
        )
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
    return HttpError(400, body=body)


def with_prompt_tokens(response: Response, tokens: int) -> Response:
    """A reply whose usage reports ``tokens`` prompt tokens (one sending no usage stays so)."""
    if not isinstance(response, Reply) or response.usage is None:
        return response
    return attrs.evolve(response, usage=attrs.evolve(response.usage, input_tokens=tokens))
