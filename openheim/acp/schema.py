"""ACP payloads built from openheim values, without I/O (prompts are read in ``prompt_content``).

Field names follow ACP v1's ``schema/v1/schema.json``. Tool-call ids are the provider's ids, the
ones stored in history, so a live turn and its ``session/load`` replay name calls alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openheim.acp.blocks import agent_chunk, image_block, thought_chunk, user_chunk
from openheim.acp.codec import invalid_params
from openheim.acp.notices import compaction_notice, mcp_startup_plan
from openheim.acp.plan import plan_update, replayed_plan
from openheim.acp.prompt_content import prompt_text as prompt_text  # used by acp.methods
from openheim.acp.tool_updates import (
    raw_input,
    tool_call,
    tool_call_finished,
    tool_call_progress,
    tool_kind,
    tool_locations,
    tool_output,
    tool_title,
)
from openheim.agent.events import (
    AgentEvent,
    Compacted,
    McpStartup,
    MessageChunk,
    PlanUpdated,
    ThoughtChunk,
    ToolCallFinished,
    ToolCallProgress,
    ToolCallStarted,
)
from openheim.config.model import Config, McpServerConfig
from openheim.foundation.models import (
    Conversation,
    Role,
    ToolCall,
    ToolDefinition,
    ToolResult,
)
from openheim.permissions import Answer
from openheim.store.base import ConversationMeta

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


# --- session/update ----------------------------------------------------------------------------


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
        case PlanUpdated(entries=entries):
            return [plan_update(entries)]
        case Compacted():
            return [compaction_notice(event)]
        case _:
            return []


def replay(conversation: Conversation, cwd: Path) -> Iterator[dict[str, Any]]:
    """A stored conversation as the updates a client would have seen live (``session/load``).

    Each tool call becomes one ``tool_call`` carrying its final status and output, taken from
    the matching tool message; an accepted ``update_plan`` is followed by its ``plan``. Where
    the conversation was compacted, a compaction notice marks the place (the transcript itself
    is replayed whole).
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
                yield from replayed_plan(call, result)
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
