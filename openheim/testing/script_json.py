"""Scripts as JSON files, so benchmarks and manual runs can drive the fake server.

A file holds a list of responses tagged by ``type``::

    [{"type": "reply", "chunks": [{"text": "Hel"}, {"text": "lo"}], "chunk_delay": 0.01},
     {"type": "reply", "chunks": [{"type": "tool_call", "index": 0, "id": "call_1",
                                    "name": "echo", "arguments": "{}"}]},
     {"type": "reply", "chunks": [{"type": "thinking", "text": "Hmm."}, {"text": "Yes."}]},
     {"type": "http_error", "status": 429, "retry_after": 0.5}]

A chunk without ``type`` is text. Unknown keys are errors: a typo must not silently turn a
fault into a clean reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cattrs
from cattrs.strategies import configure_tagged_union

from openheim.testing.script import (
    Chunk,
    ErrorBody,
    HttpError,
    RedactedThinking,
    Reply,
    Response,
    Script,
    TextChunk,
    ThinkingChunk,
    ToolCallChunk,
)

_TAGS: dict[type, str] = {
    Reply: "reply",
    HttpError: "http_error",
    TextChunk: "text",
    ToolCallChunk: "tool_call",
    ThinkingChunk: "thinking",
    RedactedThinking: "redacted_thinking",
}


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, omit_if_default=True)
    converter.register_structure_hook(ErrorBody, _structure_error_body)
    converter.register_unstructure_hook(ErrorBody, lambda value: value)
    configure_tagged_union(
        Chunk, converter, tag_generator=_TAGS.__getitem__, tag_name="type", default=TextChunk
    )
    configure_tagged_union(Response, converter, tag_generator=_TAGS.__getitem__, tag_name="type")
    return converter


def _structure_error_body(value: Any, _: Any) -> ErrorBody:
    if value is None or isinstance(value, dict | str):
        return value
    raise TypeError(f"an error body must be an object, a string or null, got {value!r}")


_CONVERTER = _make_converter()


def structure_responses(data: Any) -> list[Response]:
    """Turn parsed JSON (a list of tagged responses) into script values."""
    if not isinstance(data, list):
        raise ValueError(f"a script must be a JSON list of responses, got {type(data).__name__}")
    try:
        return _CONVERTER.structure(data, list[Response])
    except cattrs.BaseValidationError as exc:
        problems = "; ".join(cattrs.transform_error(exc, path="script"))
        raise ValueError(f"invalid fake LLM script: {problems}") from None


def unstructure_responses(responses: Iterable[Response]) -> list[dict[str, Any]]:
    """The JSON-ready form of ``responses`` (what ``structure_responses`` reads back)."""
    return _CONVERTER.unstructure(list(responses), list[Response])


def load_script(path: str | Path, *, repeat: bool = False) -> Script:
    """Read a JSON script file; raises ``OSError`` or ``ValueError`` (with a one-line reason)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return Script(structure_responses(data), repeat=repeat)


def dump_script(path: str | Path, responses: Iterable[Response]) -> None:
    """Write ``responses`` as a JSON script file (e.g. built with ``Reply.text``)."""
    text = json.dumps(unstructure_responses(responses), indent=2)
    Path(path).write_text(text + "\n", encoding="utf-8")
