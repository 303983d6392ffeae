"""What the fake Gemini server refuses, as the real API does with ``400 INVALID_ARGUMENT``.

Bad roles or empty parts, tool results that do not answer the previous model turn one for
one, a missing thought signature in the current turn, and schema keywords Gemini's
``parameters`` do not know (``$schema``, ``additionalProperties``, ``$ref``, ...). Messages
imitate Google's, so a client's error handling sees realistic text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

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


def check_request(body: Any, *, require_thought_signatures: bool) -> str | None:
    """Why a (JSON-parsed) ``generateContent`` body is invalid, or ``None``."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received. Expected an object."
    return (
        _check_contents(body.get("contents"), require_thought_signatures)
        or _check_system(body.get("systemInstruction"))
        or _check_tools(body.get("tools"))
        or _check_generation_config(body.get("generationConfig"))
    )


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
    return _check_thinking_config(config.get("thinkingConfig"))


def _check_thinking_config(config: Any) -> str | None:
    """``thinkingBudget`` is -1 (dynamic), 0 (off) or up to 32768 (Gemini 2.5 Pro's most)."""
    if config is None:
        return None
    if not isinstance(config, dict):
        return "Invalid JSON payload received. 'thinkingConfig' must be an object."
    budget = config.get("thinkingBudget")
    if budget is not None and (
        not isinstance(budget, int) or isinstance(budget, bool) or not -1 <= budget <= 32768
    ):
        return f"Invalid value at 'generation_config.thinking_config.thinking_budget', {budget!r}"
    include = config.get("includeThoughts")
    if include is not None and not isinstance(include, bool):
        return (
            "Invalid value at 'generation_config.thinking_config.include_thoughts' "
            f"(TYPE_BOOL), {include!r}"
        )
    return None
