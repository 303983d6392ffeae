"""ACP payloads built from openheim values, and prompt content read into openheim's, without I/O.

Field names follow ACP v1's ``schema/v1/schema.json``. Tool-call ids are the provider's ids, the
ones stored in history, so a live turn and its ``session/load`` replay name calls alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openheim.acp.codec import invalid_params
from openheim.agent.events import (
    AgentEvent,
    MessageChunk,
    ToolCallFinished,
    ToolCallProgress,
    ToolCallStarted,
)
from openheim.config.model import Config, McpServerConfig
from openheim.config.resolve import ModelChoice
from openheim.foundation.models import (
    Conversation,
    Location,
    Role,
    ToolCall,
    ToolDefinition,
    ToolResult,
)
from openheim.permissions import Answer
from openheim.store.base import ConversationMeta
from openheim.tools.builtin import builtin_kinds

PROTOCOL_VERSION = 1

AGENT_CAPABILITIES: Mapping[str, Any] = {
    "loadSession": True,
    "promptCapabilities": {"image": False, "audio": False, "embeddedContext": True},
    "mcpCapabilities": {"http": True, "sse": False},
    "sessionCapabilities": {"list": {}, "close": {}},
}

#: Tools whose ``path`` argument names the file or folder they work on.
_PATH_TOOLS = frozenset({"read_file", "write_file", "edit_file", "list_dir", "glob", "grep"})
_TITLES = {
    "read_file": ("path", "Read"),
    "write_file": ("path", "Write"),
    "edit_file": ("path", "Edit"),
    "list_dir": ("path", "List"),
    "glob": ("pattern", "Find"),
    "grep": ("pattern", "Search for"),
    "web_fetch": ("url", "Fetch"),
}
_TITLE_LENGTH = 120

# --- session/update ----------------------------------------------------------------------------


def session_update(session_id: str, update: Mapping[str, Any]) -> dict[str, Any]:
    """The params of a ``session/update`` notification."""
    return {"sessionId": session_id, "update": update}


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def agent_chunk(text: str) -> dict[str, Any]:
    return {"sessionUpdate": "agent_message_chunk", "content": text_block(text)}


def user_chunk(text: str) -> dict[str, Any]:
    return {"sessionUpdate": "user_message_chunk", "content": text_block(text)}


def tool_kind(name: str) -> str:
    """The kind a built-in tool declares; ``other`` for any other tool (MCP's). A face that
    holds the session's registry passes the registered tool's own kind instead."""
    return builtin_kinds().get(name, "other")


def _arguments(call: ToolCall) -> dict[str, Any] | None:
    try:
        return call.parsed_arguments()
    except ValueError:
        return None


def raw_input(call: ToolCall) -> Any:
    """The parsed arguments; the model's raw text when it is not a JSON object."""
    arguments = _arguments(call)
    return call.arguments if arguments is None else arguments


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _TITLE_LENGTH else text[: _TITLE_LENGTH - 1] + "…"


def tool_title(call: ToolCall) -> str:
    """What a client shows for the call: the command line, or the action and its file."""
    arguments = _arguments(call) or {}
    if call.name == "execute_command" and isinstance(arguments.get("command"), str):
        return _shorten(arguments["command"]) or call.name
    argument, verb = _TITLES.get(call.name, ("", ""))
    value = arguments.get(argument) if argument else None
    if isinstance(value, str) and value:
        return _shorten(f"{verb} {value}")
    return call.name


def tool_locations(call: ToolCall, cwd: Path) -> list[dict[str, Any]]:
    """Absolute paths the file tools touch, for a client's follow-along view."""
    if call.name not in _PATH_TOOLS:
        return []
    arguments = _arguments(call) or {}
    raw = arguments.get("path")
    if not isinstance(raw, str) or not raw:
        return []
    path = Path(raw).expanduser()
    location: dict[str, Any] = {"path": str(path if path.is_absolute() else cwd / path)}
    offset = arguments.get("offset")
    if call.name == "read_file" and type(offset) is int and offset >= 1:
        location["line"] = offset
    return [location]


def tool_call(
    call: ToolCall, cwd: Path, status: str = "pending", kind: str | None = None
) -> dict[str, Any]:
    update: dict[str, Any] = {
        "sessionUpdate": "tool_call",
        "toolCallId": call.id,
        "title": tool_title(call),
        "kind": kind or tool_kind(call.name),
        "status": status,
        "rawInput": raw_input(call),
    }
    locations = tool_locations(call, cwd)
    if locations:
        update["locations"] = locations
    return update


def tool_call_in_progress(call_id: str) -> dict[str, Any]:
    return {"sessionUpdate": "tool_call_update", "toolCallId": call_id, "status": "in_progress"}


def tool_output(result: ToolResult) -> dict[str, Any]:
    """The final fields of a call: status, the output as content (an edit's as diffs, which
    editors draw), the files and lines it touched, and the raw output."""
    if result.diffs:
        content = [
            {"type": "diff", "path": diff.path, "oldText": diff.old_text, "newText": diff.new_text}
            for diff in result.diffs
        ]
    else:
        content = [{"type": "content", "content": text_block(result.content)}]
    fields: dict[str, Any] = {
        "status": "failed" if result.is_error else "completed",
        "content": content,
        "rawOutput": result.content,
    }
    if result.locations:
        fields["locations"] = [_location(location) for location in result.locations]
    return fields


def _location(location: Location) -> dict[str, Any]:
    shown: dict[str, Any] = {"path": location.path}
    if location.line is not None:
        shown["line"] = location.line
    return shown


def tool_call_progress(call_id: str, output: str) -> dict[str, Any]:
    """A running call's output so far; ACP replaces the call's content with it."""
    return {
        "sessionUpdate": "tool_call_update",
        "toolCallId": call_id,
        "content": [{"type": "content", "content": text_block(output)}],
    }


def tool_call_finished(call_id: str, result: ToolResult) -> dict[str, Any]:
    return {"sessionUpdate": "tool_call_update", "toolCallId": call_id, **tool_output(result)}


def updates_for(event: AgentEvent, cwd: Path) -> list[dict[str, Any]]:
    """The updates an event becomes; the dispatcher adds ``in_progress`` where it applies.

    ``ProviderRetrying`` has no stable ACP update and ``TurnFinished`` is the prompt's reply,
    so both map to nothing.
    """
    match event:
        case MessageChunk(text=text):
            return [agent_chunk(text)] if text else []
        case ToolCallStarted(call=call):
            return [tool_call(call, cwd)]
        case ToolCallProgress(call=call, output=output):
            return [tool_call_progress(call.id, output)]
        case ToolCallFinished(call=call, result=result):
            return [tool_call_finished(call.id, result)]
        case _:
            return []


def replay(conversation: Conversation, cwd: Path) -> Iterator[dict[str, Any]]:
    """A stored conversation as the updates a client would have seen live (``session/load``).

    Each tool call becomes one ``tool_call`` carrying its final status and output, taken from
    the matching tool message.
    """
    results = {
        message.tool_call_id: ToolResult(message.content or "", message.is_error)
        for message in conversation.messages
        if message.role is Role.TOOL and message.tool_call_id is not None
    }
    for message in conversation.messages:
        if message.role is Role.USER and message.content:
            yield user_chunk(message.content)
        elif message.role is Role.ASSISTANT:
            if message.content:
                yield agent_chunk(message.content)
            for call in message.tool_calls:
                update = tool_call(call, cwd)
                result = results.get(call.id)
                if result is not None:
                    update.update(tool_output(result))
                yield update


# --- permissions ------------------------------------------------------------------------------

PERMISSION_OPTIONS: Sequence[Mapping[str, str]] = (
    {"optionId": Answer.ALLOW_ONCE.value, "name": "Allow once", "kind": "allow_once"},
    {"optionId": Answer.ALLOW_ALWAYS.value, "name": "Always allow", "kind": "allow_always"},
    {"optionId": Answer.REJECT_ONCE.value, "name": "Reject", "kind": "reject_once"},
    {"optionId": Answer.REJECT_ALWAYS.value, "name": "Always reject", "kind": "reject_always"},
)


def permission_request(session_id: str, call: ToolCall, cwd: Path) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "toolCallId": call.id,
        "title": tool_title(call),
        "kind": tool_kind(call.name),
        "rawInput": raw_input(call),
    }
    locations = tool_locations(call, cwd)
    if locations:
        tool["locations"] = locations
    return {"sessionId": session_id, "toolCall": tool, "options": list(PERMISSION_OPTIONS)}


def permission_answer(result: Any) -> Answer | None:
    """The option the client selected; ``None`` (denied) for cancelled or anything else."""
    outcome = result.get("outcome") if isinstance(result, dict) else None
    if not isinstance(outcome, dict) or outcome.get("outcome") != "selected":
        return None
    try:
        return Answer(outcome.get("optionId"))
    except ValueError:
        return None


# --- prompt content ----------------------------------------------------------------------------


def prompt_text(blocks: Any) -> str:
    """The text of a ``session/prompt``; raises ``-32602`` for content we did not advertise."""
    if not isinstance(blocks, list) or not blocks:
        raise invalid_params("prompt must be a non-empty array of content blocks")
    parts = [_block_text(block) for block in blocks]
    text = "\n".join(part for part in parts if part)
    if not text.strip():
        raise invalid_params("prompt has no text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a JSON "\ud800": no provider or history file can take it
        raise invalid_params("prompt text is not valid Unicode (a lone surrogate)") from None
    return text


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        raise invalid_params("each prompt content block must be an object")
    kind = block.get("type")
    if kind == "text":
        return _field(block, "text", "text")
    if kind == "resource_link":
        return _resource_link(block)
    if kind == "resource":
        return _embedded_resource(block.get("resource"))
    if kind in ("image", "audio"):
        raise invalid_params(f"{kind} content is not supported: promptCapabilities.{kind} is false")
    raise invalid_params(f"unknown content block type {kind!r}")


def _field(block: Mapping[str, Any], name: str, kind: str) -> str:
    value = block.get(name)
    if not isinstance(value, str):
        raise invalid_params(f'a "{kind}" content block needs a string "{name}"')
    return value


def _resource_link(block: Mapping[str, Any]) -> str:
    uri = _field(block, "uri", "resource_link")
    name = block.get("name") if isinstance(block.get("name"), str) else None
    details = [f"{key}: {block[key]}" for key in ("mimeType", "size") if block.get(key)]
    label = f"{name} <{uri}>" if name and name != uri else uri
    suffix = f" ({', '.join(details)})" if details else ""
    return f"[Resource: {label}{suffix}]"


def _embedded_resource(resource: Any) -> str:
    if not isinstance(resource, dict):
        raise invalid_params('a "resource" content block needs a "resource" object')
    uri = _field(resource, "uri", "resource")
    text = resource.get("text")
    if isinstance(text, str):
        fence = "```"
        while fence in text:
            fence += "`"
        body = text if text.endswith("\n") else text + "\n"
        return f"{uri}:\n{fence}\n{body}{fence}"
    mime = resource.get("mimeType")
    kind = f"{mime} " if isinstance(mime, str) else ""
    return f"[Embedded {kind}resource {uri}: binary content, not shown]"


# --- session setup -----------------------------------------------------------------------------


def _model_labels(config: Config) -> list[str]:
    return [
        f"{name}/{model}"
        for name in sorted(config.providers)
        for model in config.providers[name].models
    ]


def model_labels(config: Config, choice: ModelChoice) -> list[str]:
    """Every configured model as ``provider/model``, the session's own included."""
    labels = _model_labels(config)
    return labels if choice.label in labels else [choice.label, *labels]


def config_options(config: Config, choice: ModelChoice) -> list[dict[str, Any]]:
    """The complete list of session config options (one: the model)."""
    return [
        {
            "id": "model",
            "name": "Model",
            "category": "model",
            "type": "select",
            "currentValue": choice.label,
            "options": [{"value": label, "name": label} for label in model_labels(config, choice)],
        }
    ]


def legacy_models(config: Config, choice: ModelChoice) -> dict[str, Any]:
    """The pre-config-options ``models`` state, still read by acpx."""
    return {
        "currentModelId": choice.label,
        "availableModels": [
            {"modelId": label, "name": label} for label in model_labels(config, choice)
        ],
    }


def mcp_servers(value: Any) -> tuple[McpServerConfig, ...]:
    """``session/new``'s ``mcpServers``: stdio (``type`` absent or ``"stdio"``) and http."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid_params("mcpServers must be an array")
    servers = tuple(_mcp_server(item, index) for index, item in enumerate(value))
    names = [server.name for server in servers]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise invalid_params(f"mcpServers: the name {duplicate!r} is used twice")
    return servers


def _mcp_server(item: Any, index: int) -> McpServerConfig:
    where = f"mcpServers[{index}]"
    if not isinstance(item, dict):
        raise invalid_params(f"{where} must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise invalid_params(f'{where} needs a non-empty string "name"')
    kind = item.get("type", "stdio")
    if kind == "stdio":
        command = item.get("command")
        if not isinstance(command, str) or not command:
            raise invalid_params(f'{where} ({name}) needs a string "command"')
        args = item.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise invalid_params(f'{where} ({name}): "args" must be an array of strings')
        env = _name_values(item.get("env", []), f"{where} ({name}).env")
        return McpServerConfig(name=name, command=command, args=tuple(args), env=env)
    if kind == "http":
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid_params(f'{where} ({name}) needs an http(s) "url"')
        headers = _name_values(item.get("headers", []), f"{where} ({name}).headers")
        return McpServerConfig(name=name, url=url, headers=headers)
    if kind == "sse":
        raise invalid_params(f"{where} ({name}): SSE MCP servers are not supported; use http")
    raise invalid_params(f"{where} ({name}): unknown type {kind!r}")


def _name_values(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, list):
        raise invalid_params(f"{where} must be an array of {{name, value}} objects")
    pairs = {}
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value"), str)
        ):
            raise invalid_params(f"{where} must be an array of {{name, value}} objects")
        pairs[item["name"]] = item["value"]
    return pairs


def models_meta(config: Config) -> dict[str, Any]:
    """``GET /api/models`` of openheim 0.1: providers in alphabetical order."""
    return {
        "default_provider": config.default_provider,
        "providers": {
            name: {
                "default_model": config.providers[name].default_model,
                "models": list(config.providers[name].models),
            }
            for name in sorted(config.providers)
        },
    }


def tool_definitions(definitions: Iterable[ToolDefinition]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": d.name,
                "description": d.description,
                "parameters": d.parameters,
            },
        }
        for d in definitions
    ]


def initialize_result(
    *,
    version: str,
    config: Config,
    skills: Sequence[str],
    tools: Iterable[ToolDefinition],
    mcp_servers: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """``_meta`` carries what a client UI shows: models, MCP servers' live state, skills."""
    return {
        "protocolVersion": PROTOCOL_VERSION,
        "agentCapabilities": dict(AGENT_CAPABILITIES),
        "authMethods": [],
        "agentInfo": {"name": "openheim", "title": "openheim", "version": version},
        "_meta": {
            "models": models_meta(config),
            "mcp_servers": [dict(row) for row in mcp_servers],
            "skills": list(skills),
            "tools": tool_definitions(tools),
        },
    }


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def session_info(meta: ConversationMeta) -> dict[str, Any]:
    info: dict[str, Any] = {
        "sessionId": meta.id,
        "cwd": meta.cwd or "/",
        "updatedAt": format_time(meta.updated_at),
    }
    if meta.title:
        info["title"] = meta.title
    return info
