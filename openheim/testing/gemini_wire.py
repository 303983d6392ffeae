"""The Google Gemini ``generateContent`` dialect of the fake server (sans-IO).

Streams look like ``streamGenerateContent?alt=sse``: each ``data:`` is a whole
``GenerateContentResponse`` (CRLF-framed, as Google sends them), one per text chunk; the
scripted fragments of all tool calls are assembled into whole ``functionCall`` parts sent in
one event, without ids, the first with a ``thoughtSignature`` (as Gemini 3 does); the last
event carries the ``finishReason`` (``STOP`` also after calls) and the full ``usageMetadata``.
There is no end marker, so ``Reply.omit_done`` leaves out that last event, and fault
positions count these events (one per text chunk, one for all calls, the last one).

Requests are checked for the mistakes the real API rejects with ``400 INVALID_ARGUMENT``:
bad roles or empty parts, tool results that do not answer the previous model turn one for
one, a missing thought signature in the current turn and schema keywords Gemini's
``parameters`` do not know (``$schema``, ``additionalProperties``, ``$ref``, ...).
"""

from __future__ import annotations

import base64
import http
import json
import re
from collections.abc import Iterator
from typing import Any

import attrs

from openheim.models import Usage
from openheim.testing.script import HttpError, RecordedRequest, Reply, TextChunk, ToolCallChunk
from openheim.testing.wire import (
    Headers,
    PlainResponse,
    StreamResponse,
    error_payload_response,
    format_seconds,
    json_response,
)

PATH = re.compile(
    r"(?:/v1beta|/v1)?/models/(?P<model>[^:]+):(?P<method>streamGenerateContent|generateContent)"
)
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
FINISH_REASONS = {
    "stop": "STOP",
    "tool_calls": "STOP",  # Gemini has no separate reason for calls
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
_DEFAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota). (fake)",
    500: "An internal error has occurred. Please retry. (fake)",
    503: "The model is overloaded. Please try again later. (fake)",
}
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
STRUCT = "type.googleapis.com/google.protobuf.Struct"
INVALID_PAYLOAD = "Invalid JSON payload received."
SCHEMA_FIELDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")


def status_name(status: int) -> str:
    """The ``google.rpc.Code`` name Google's JSON errors carry for an HTTP status."""
    return STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def error_body(
    status: int, message: str | None = None, *, retry_after: float | None = None
) -> dict[str, Any]:
    """Google's error JSON; a ``retry_after`` becomes a ``RetryInfo`` detail, as on 429s."""
    if message is None:
        message = _DEFAULT_MESSAGES.get(status) or _phrase(status)
    error: dict[str, Any] = {"code": status, "message": message, "status": status_name(status)}
    if retry_after is not None:
        error["details"] = [{"@type": RETRY_INFO, "retryDelay": f"{retry_after:g}s"}]
    return {"error": error}


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def finish_reason(reply: Reply) -> str:
    """The Gemini ``finishReason`` for a scripted one; unknown ones pass through upper-cased
    (so a script can say ``"recitation"`` or ``"malformed_function_call"``)."""
    raw = reply.effective_finish_reason
    return FINISH_REASONS.get(raw, raw.upper())


def thought_signature(sequence: int) -> str:
    """The fake's opaque signature for the calls of reply ``sequence`` (base64, as Google's)."""
    return base64.b64encode(f"fake-thought-signature-{sequence}".encode()).decode()


def usage_metadata(usage: Usage, *, final: bool = True) -> dict[str, Any]:
    """``usageMetadata``; before the last chunk Gemini reports only the prompt so far."""
    metadata: dict[str, Any] = {"promptTokenCount": usage.input_tokens}
    if final:
        metadata["candidatesTokenCount"] = usage.output_tokens
    metadata["totalTokenCount"] = usage.total_tokens if final else usage.input_tokens
    if usage.cache_read_tokens:
        metadata["cachedContentTokenCount"] = usage.cache_read_tokens
    return metadata


def function_call_parts(reply: Reply, *, sequence: int) -> list[dict[str, Any]] | None:
    """Each scripted call assembled into one ``functionCall`` part, in index order.

    ``None`` when some call's arguments are not a JSON object: Gemini cannot send those and
    ends the response with ``MALFORMED_FUNCTION_CALL`` instead.
    """
    names: dict[int, str] = {}
    arguments: dict[int, list[str]] = {}
    for chunk in reply.chunks:
        if isinstance(chunk, ToolCallChunk):
            if chunk.name is not None:
                names.setdefault(chunk.index, chunk.name)
            arguments.setdefault(chunk.index, []).append(chunk.arguments)
    parts: list[dict[str, Any]] = []
    for index in sorted(arguments):
        text = "".join(arguments[index]).strip() or "{}"
        try:
            args = json.loads(text)
        except ValueError:
            return None
        if not isinstance(args, dict):
            return None
        parts.append({"functionCall": {"name": names.get(index, ""), "args": args}})
    if parts:
        parts[0]["thoughtSignature"] = thought_signature(sequence)
    return parts


def sse_event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\r\n\r\n"


def response_chunks(reply: Reply, *, model: str, sequence: int) -> list[dict[str, Any]]:
    """Every ``GenerateContentResponse`` of ``reply``'s stream, in order.

    Faults are the server's business; ``omit_done`` drops the final chunk here.
    """
    base = {"modelVersion": model, "responseId": f"fake-response-{sequence}"}

    def chunk(candidate: dict[str, Any], *, final: bool = False) -> dict[str, Any]:
        payload: dict[str, Any] = {"candidates": [{**candidate, "index": 0}]}
        if reply.usage is not None:
            payload["usageMetadata"] = usage_metadata(reply.usage, final=final)
        return {**payload, **base}

    def content(*parts: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"parts": list(parts), "role": "model"}}

    calls = function_call_parts(reply, sequence=sequence)
    chunks: list[dict[str, Any]] = []
    calls_sent = False
    for item in reply.chunks:
        if isinstance(item, TextChunk):
            chunks.append(chunk(content({"text": item.text})))
        elif not calls_sent and calls:
            chunks.append(chunk(content(*calls)))
            calls_sent = True
    if calls is None:
        final = {
            "finishReason": "MALFORMED_FUNCTION_CALL",
            "finishMessage": "Malformed function call: the arguments are not a JSON object",
        }
    else:
        final = {**content({"text": ""}), "finishReason": finish_reason(reply)}
    if not reply.omit_done:
        chunks.append(chunk(final, final=True))
    return chunks


def generate_content_body(reply: Reply, *, model: str, sequence: int) -> dict[str, Any]:
    """The non-streamed answer: text joined into one part, then the calls."""
    text = "".join(item.text for item in reply.chunks if isinstance(item, TextChunk))
    calls = function_call_parts(reply, sequence=sequence)
    parts = ([{"text": text}] if text else []) + (calls or [])
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    candidate["finishReason"] = "MALFORMED_FUNCTION_CALL" if calls is None else finish_reason(reply)
    body: dict[str, Any] = {"candidates": [{**candidate, "index": 0}]}
    if reply.usage is not None:
        body["usageMetadata"] = usage_metadata(reply.usage)
    return {**body, "modelVersion": model, "responseId": f"fake-response-{sequence}"}


@attrs.frozen
class GeminiGenerateContentDialect:
    """``POST /v1beta/models/{model}:streamGenerateContent`` (and ``:generateContent``).

    The version prefix is optional (``/v1`` is also taken, so ``FakeLLMServer.base_url``
    works). ``require_thought_signatures=False`` accepts histories without signatures, as
    Gemini 2.5 does.
    """

    require_thought_signatures: bool = True

    def matches(self, path: str) -> bool:
        return PATH.fullmatch(path) is not None

    def check(self, request: RecordedRequest) -> str | None:
        body = request.body
        if not isinstance(body, dict):
            return "Invalid JSON payload received. Expected an object."
        return (
            _check_contents(body.get("contents"), self.require_thought_signatures)
            or _check_system(body.get("systemInstruction"))
            or _check_tools(body.get("tools"))
            or _check_generation_config(body.get("generationConfig"))
        )

    def render_reply(
        self, reply: Reply, request: RecordedRequest, *, sequence: int, created: int
    ) -> StreamResponse | PlainResponse:
        match = PATH.fullmatch(request.path)
        assert match is not None  # the server only sends requests this dialect matches
        model = match["model"].removeprefix("models/")
        if match["method"] == "generateContent":
            return json_response(200, generate_content_body(reply, model=model, sequence=sequence))
        chunks = response_chunks(reply, model=model, sequence=sequence)
        if "alt=sse" not in request.query.split("&"):
            # Without alt=sse Google streams one JSON array; sent whole here.
            return json_response(200, chunks)
        headers: Headers = (
            ("content-type", "text/event-stream"),
            ("x-content-type-options", "nosniff"),
        )
        return StreamResponse(headers, tuple(sse_event(chunk) for chunk in chunks))

    def render_error(self, error: HttpError) -> PlainResponse:
        headers: Headers = ()
        if error.retry_after is not None:
            headers = (("retry-after", format_seconds(error.retry_after)),)
        default = error_body(error.status, retry_after=error.retry_after)
        return error_payload_response(error, default, headers)

    def error(self, status: int, message: str) -> PlainResponse:
        return json_response(status, error_body(status, message))


# --- request checks -------------------------------------------------------------------------


def _check_contents(contents: Any, require_signatures: bool) -> str | None:
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            return f"Invalid JSON payload received. {where} must be an object."
        role = content.get("role")
        if role not in ("user", "model"):
            return f"Please use a valid role: user, model. ({where}.role is {role!r})"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty."
        for j, part in enumerate(parts):
            problem = _check_part(part, role, f"{where}.parts[{j}]")
            if problem:
                return problem
    if contents[0]["role"] != "user":
        return "Please ensure that the conversation starts with a user turn (contents[0])."
    for i, content in enumerate(contents):
        answered = _count_parts(content, "functionResponse")
        if not answered:
            continue
        previous = contents[i - 1] if i else None
        is_model = previous is not None and previous["role"] == "model"
        calls = _count_parts(previous, "functionCall") if is_model else 0
        if answered != calls:
            return (
                "Please ensure that the number of function response parts is equal to the "
                f"number of function call parts of the function call turn (contents[{i}]: "
                f"{answered} responses, {calls} calls before them)."
            )
    if require_signatures:
        return _check_thought_signatures(contents)
    return None


def _check_part(part: Any, role: str, where: str) -> str | None:
    if not isinstance(part, dict):
        return f"Invalid JSON payload received. {where} must be an object."
    if "text" in part:
        if not isinstance(part["text"], str) or not part["text"]:
            return f"Unable to submit request because it has an empty text parameter ({where})."
        return None
    if "functionCall" in part:
        call = part["functionCall"]
        if role != "model":
            return f"{where}: a functionCall part belongs in a model content."
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return f"* GenerateContentRequest.{where}.function_call.name: Name is required."
        if not isinstance(call.get("args", {}), dict):
            return f"Invalid value at '{where}.function_call.args' ({STRUCT})"
        return None
    if "functionResponse" in part:
        response = part["functionResponse"]
        if role != "user":
            return f"{where}: a functionResponse part belongs in a user content."
        if not isinstance(response, dict) or not isinstance(response.get("name"), str):
            return f"* GenerateContentRequest.{where}.function_response.name: Name is required."
        if not isinstance(response.get("response"), dict):
            return f"Invalid value at '{where}.function_response.response' ({STRUCT})"
        return None
    if "inlineData" in part or "fileData" in part:
        return None
    return (
        f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one "
        "initialized field"
    )


def _count_parts(content: Any, kind: str) -> int:
    if not isinstance(content, dict):
        return 0
    return sum(1 for part in content["parts"] if kind in part)


def _check_thought_signatures(contents: list[dict[str, Any]]) -> str | None:
    """Gemini 3's rule: in the current turn (after the last user text), the first call of
    every model step must carry the signature it was sent with."""
    start = 0
    for i, content in enumerate(contents):
        if content["role"] == "user" and any("text" in part for part in content["parts"]):
            start = i
    for i in range(start, len(contents)):
        calls = [part for part in contents[i]["parts"] if "functionCall" in part]
        if calls and not isinstance(calls[0].get("thoughtSignature"), str):
            name = calls[0]["functionCall"]["name"]
            return (
                "Function call is missing a thought_signature in functionCall parts. This is "
                f"required for tools to work correctly (function call `{name}`, contents[{i}])."
            )
    return None


def _check_system(system: Any) -> str | None:
    if system is None:
        return None
    parts = system.get("parts") if isinstance(system, dict) else None
    if not isinstance(parts, list) or not parts:
        return "* GenerateContentRequest.system_instruction.parts: must not be empty."
    for j, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str) or not part["text"]:
            where = f"system_instruction.parts[{j}]"
            return f"Unable to submit request because it has an empty text parameter ({where})."
    return None


def _check_tools(tools: Any) -> str | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "Invalid JSON payload received. 'tools' must be a list."
    for t, tool in enumerate(tools):
        declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
        if not isinstance(declarations, list):
            return f"Invalid JSON payload received. tools[{t}] has no functionDeclarations."
        for d, declaration in enumerate(declarations):
            where = f"tools[{t}].function_declarations[{d}]"
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                return (
                    f"* GenerateContentRequest.{where}.name: Invalid function name. Must start "
                    "with a letter or an underscore and be at most 64 characters of a-z, A-Z, "
                    "0-9, underscores, dots, colons and dashes."
                )
            if "parameters" in declaration:
                parameters = declaration["parameters"]
                problem = next(_schema_problems(parameters, f"{where}.parameters"), None)
                if problem:
                    return problem
    return None


def _schema_problems(schema: Any, where: str) -> Iterator[str]:
    """What Gemini's ``Schema`` proto would reject in ``schema``, outermost first."""
    if not isinstance(schema, dict):
        yield f"Invalid JSON payload received. '{where}' must be an object."
        return
    for key in schema:
        if key not in SCHEMA_FIELDS:
            yield f"{INVALID_PAYLOAD} Unknown name \"{key}\" at '{where}': Cannot find field."
    kind = schema.get("type")
    if isinstance(kind, list):
        yield (
            f"{INVALID_PAYLOAD} Unknown name \"type\" at '{where}': Proto field is not "
            "repeating, cannot start list."
        )
    enum = schema.get("enum")
    if isinstance(enum, list):
        for k, value in enumerate(enum):
            if not isinstance(value, str):
                yield f"Invalid value at '{where}.enum[{k}]' (TYPE_STRING), {json.dumps(value)}"
    if isinstance(kind, str) and kind.lower() == "array" and "items" not in schema:
        yield f"* GenerateContentRequest.{where}.items: missing field."
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, value in properties.items():
            yield from _schema_problems(value, f"{where}.properties[{name}].value")
    if "items" in schema:
        yield from _schema_problems(schema["items"], f"{where}.items")
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        for k, branch in enumerate(branches):
            yield from _schema_problems(branch, f"{where}.any_of[{k}]")


def _check_generation_config(config: Any) -> str | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        return "Invalid JSON payload received. 'generationConfig' must be an object."
    tokens = config.get("maxOutputTokens")
    if tokens is not None and (not isinstance(tokens, int) or tokens < 1):
        return f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {tokens!r}"
    return None
