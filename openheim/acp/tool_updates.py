"""ACP ``tool_call`` and ``tool_call_update`` payloads: what an editor draws for a tool call
(title, kind, locations, diffs, live output) from the call and its result, without I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openheim.acp.blocks import image_block, text_block
from openheim.foundation.models import Location, ToolCall, ToolResult
from openheim.tools.builtin import builtin_kinds

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
