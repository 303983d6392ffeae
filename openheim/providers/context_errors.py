"""Which provider errors mean "the prompt is longer than the model's window".

Each vendor says it its own way, always as HTTP 400: OpenAI (and servers copying its API) with
the code ``context_length_exceeded`` or "maximum context length", Anthropic with "prompt is too
long", Gemini with "The input token count (N) exceeds the maximum number of tokens allowed".
Recognised, the error becomes ``ContextTooLong``, which the agent loop answers by compacting.
"""

from __future__ import annotations

import json
import re
from typing import Any

from openheim.foundation.errors import ContextTooLong, ProviderError

_MESSAGES = re.compile(
    r"maximum context length|prompt is too long|input token count.*exceeds"
    r"|context[ _]length[ _]exceeded|exceeds the available context size",
    re.IGNORECASE | re.DOTALL,
)


def is_context_overflow(status: int | None, body: bytes) -> bool:
    if status not in (400, 413):
        return False
    text = body.decode("utf-8", errors="replace")
    return _error_code(text) == "context_length_exceeded" or bool(_MESSAGES.search(text))


def classify(error: ProviderError, body: bytes) -> ProviderError:
    """``error`` itself, or as a ``ContextTooLong`` when ``body`` says the prompt overflowed."""
    if isinstance(error, ContextTooLong) or not is_context_overflow(error.status, body):
        return error
    return ContextTooLong(
        error.message, provider=error.provider, status=error.status, retryable=False
    )


def _error_code(text: str) -> str | None:
    try:
        payload: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
