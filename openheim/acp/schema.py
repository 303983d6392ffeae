"""ACP payloads built from openheim values, without I/O (prompts are read in ``prompt_content``).

Field names follow ACP v1's ``schema/v1/schema.json``. Tool-call ids are the provider's ids, the
ones stored in history, so a live turn and its ``session/load`` replay name calls alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openheim.acp.codec import invalid_params
from openheim.acp.notices import compaction_notice, mcp_startup_plan
from openheim.acp.prompt_content import prompt_text as prompt_text  # used by acp.methods
from openheim.agent.events import (
    AgentEvent,
    Compacted,
    McpStartup,
    MessageChunk,
    ThoughtChunk,
    ToolCallFinished,
    ToolCallProgress,
    ToolCallStarted,
)
from openheim.config.model import Config, McpServerConfig
from openheim.foundation.models import (
    Conversation,
    ImagePart,
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
    "promptCapabilities": {"image": True, "audio": False, "embeddedContext": True},
    "mcpCapabilities": {"http": True, "sse": False},
    "sessionCapabilities": {
        "list": {},
        "close": {},
        "resume": {},
        "delete": {},
        "additionalDirectories": {},
    },
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


def image_block(image: ImagePart) -> dict[str, Any]:
    return {"type": "image", "mimeType": image.mime_type, "data": image.data}


def agent_chunk(text: str) -> dict[str, Any]:
    return {"sessionUpdate": "agent_message_chunk", "content": text_block(text)}


def thought_chunk(text: str) -> dict[str, Any]:
    return {"sessionUpdate": "agent_thought_chunk", "content": text_block(text)}


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
    editors draw; images after the text), the files and lines it touched, and the raw output."""
    if result.diffs:
        content = [
            {"type": "diff", "path": diff.path, "oldText": diff.old_text, "newText": diff.new_text}
            for diff in result.diffs
        ]
    else:
        content = [{"type": "content", "content": text_block(result.content)}]
    content += [{"type": "content", "content": image_block(image)} for image in result.images]
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
        case ThoughtChunk(text=text):
            return [thought_chunk(text)] if text else []
        case ToolCallStarted(call=call):
            return [tool_call(call, cwd)]
        case ToolCallProgress(call=call, output=output):
            return [tool_call_progress(call.id, output)]
        case ToolCallFinished(call=call, result=result):
            return [tool_call_finished(call.id, result)]
        case McpStartup():
            return [mcp_startup_plan(event)]
        case Compacted():
            return [compaction_notice(event)]
        case _:
            return []


def replay(conversation: Conversation, cwd: Path) -> Iterator[dict[str, Any]]:
    """A stored conversation as the updates a client would have seen live (``session/load``).

    Each tool call becomes one ``tool_call`` carrying its final status and output, taken from
    the matching tool message. Where the conversation was compacted, a compaction notice
    marks the place (the transcript itself is replayed whole).
    """
    markers: dict[int, list[Compacted]] = {}
    for record in conversation.compactions:
        event = Compacted(record.tokens_before, record.tokens_after, record.method.value)
        markers.setdefault(record.at, []).append(event)
    results = {
        message.tool_call_id: ToolResult(message.content or "", message.is_error)
        for message in conversation.messages
        if message.role is Role.TOOL and message.tool_call_id is not None
    }
    for index, message in enumerate(conversation.messages):
        for event in markers.pop(index, ()):
            yield compaction_notice(event)
        if message.role is Role.USER and message.content:
            yield user_chunk(message.content)
        if message.role is Role.USER:
            for image in message.images:
                yield {"sessionUpdate": "user_message_chunk", "content": image_block(image)}
        elif message.role is Role.ASSISTANT:
            if message.reasoning is not None and message.reasoning.text:
                yield thought_chunk(message.reasoning.text)
            if message.content:
                yield agent_chunk(message.content)
            for call in message.tool_calls:
                update = tool_call(call, cwd)
                result = results.get(call.id)
                if result is not None:
                    update.update(tool_output(result))
                yield update
    for events in markers.values():  # made after the last message (``/compact``)
        for event in events:
            yield compaction_notice(event)


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


# --- session setup -----------------------------------------------------------------------------


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
