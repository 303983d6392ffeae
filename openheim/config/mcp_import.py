"""``openheim mcp import``, reading: other clients' MCP server JSON as server configs.

``parse_servers`` (pure) reads the JSON of Claude Desktop, Claude Code, Cursor, Windsurf,
Cline, VS Code or Zed and returns ``McpServerConfig``s plus warnings; ``config.mcp_append``
writes them into ``config.toml``. Nothing here imports the MCP SDK.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from openheim.config.load import NAME_RE
from openheim.config.model import McpServerConfig
from openheim.foundation.errors import ConfigError

#: Top-level keys holding the servers: Claude Desktop / Code, Cursor, Windsurf, Cline; VS Code
#: (``.vscode/mcp.json``); Zed (``settings.json``).
CONTAINER_KEYS = ("mcpServers", "servers", "context_servers")
_HTTP_TYPES = {"http", "streamable-http", "streamable_http", "streamablehttp"}
_KNOWN_KEYS = {
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "serverUrl",
    "headers",
    "type",
    "disabled",
    "enabled",
    "source",  # Zed: "custom" or "extension"
}


@attrs.frozen
class ImportResult:
    """Servers in file order, under names the config accepts, and one line per warning."""

    servers: tuple[McpServerConfig, ...]
    warnings: tuple[str, ...] = ()


class _Skip(Exception):
    """An entry that cannot be imported; the message says why."""


# --- parsing -------------------------------------------------------------------------------


def parse_servers(text: str, source: str) -> ImportResult:
    """The servers of one JSON (or JSONC, as VS Code and Zed write) file. ``source`` names it
    in errors. Raises ``ConfigError`` for text that is not JSON or has no servers object."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = json.loads(strip_jsonc(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; "
                "fix: correct the syntax there"
            ) from None
    return convert_servers(data, source)


def convert_servers(data: Any, source: str) -> ImportResult:
    """Already-decoded JSON to server configs; see ``parse_servers``."""
    entries = _find_entries(data, source)
    servers: list[McpServerConfig] = []
    warnings: list[str] = []
    taken: set[str] = set()
    for original, raw in entries:
        name = config_name(original)
        if name != original:
            warnings.append(
                f"{original!r}: renamed to {name!r} "
                "(server names use letters, digits, `_`, `-` and `.` only)"
            )
        if name in taken:
            warnings.append(f"{original!r}: skipped, the name {name!r} is already used above")
            continue
        try:
            server = _convert_entry(name, original, raw, warnings)
        except _Skip as skip:
            warnings.append(f"{original!r}: skipped, {skip}")
            continue
        taken.add(name)
        servers.append(server)
    return ImportResult(tuple(servers), tuple(warnings))


def _find_entries(data: Any, source: str) -> list[tuple[str, Any]]:
    shape_fix = (
        "fix: give a Claude Desktop, Cursor, VS Code or Zed file with an "
        "`mcpServers`, `servers` or `context_servers` object"
    )
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {_json_type(data)}; {shape_fix}")
    containers: list[tuple[str, Any]] = [(key, data[key]) for key in CONTAINER_KEYS if key in data]
    nested = data.get("mcp")  # VS Code user settings.json: {"mcp": {"servers": {...}}}
    if isinstance(nested, dict) and "servers" in nested:
        containers.append(("mcp.servers", nested["servers"]))
    if not containers:
        if data and all(_looks_like_server(value) for value in data.values()):
            return list(data.items())
        raise ConfigError(f"{source}: no MCP servers found; {shape_fix}")
    entries: list[tuple[str, Any]] = []
    for key, value in containers:
        if not isinstance(value, dict):
            raise ConfigError(
                f"{source}: `{key}` must be an object of name: server, got {_json_type(value)}; "
                "fix: correct the file"
            )
        entries.extend(value.items())
    return entries


def _looks_like_server(value: Any) -> bool:
    return isinstance(value, dict) and any(k in value for k in ("command", "url", "serverUrl"))


def config_name(name: str) -> str:
    """``name`` as a ``[mcp_servers.NAME]`` name: other characters become ``-``."""
    if NAME_RE.match(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    cleaned = re.sub(r"^[^A-Za-z0-9]+", "", cleaned).rstrip("-")
    return cleaned or "server"


def _convert_entry(name: str, label: str, raw: Any, warnings: list[str]) -> McpServerConfig:
    """``label`` is the name in the file, which warnings use."""
    if not isinstance(raw, dict):
        raise _Skip(f"it is {_json_type(raw)}, not an object")
    unknown = [key for key in raw if key not in _KNOWN_KEYS]
    if "settings" in unknown and not raw["settings"]:  # Zed writes "settings": {}
        unknown.remove("settings")

    command = raw.get("command")
    args = _strings(raw.get("args"), "args")
    env = _string_map(raw.get("env"), "env")
    if isinstance(command, dict):  # Zed: "command": {"path": ..., "args": [...], "env": {...}}
        nested = command
        command = nested.get("path")
        args = _strings(nested.get("args"), "command.args") or args
        env = _string_map(nested.get("env"), "command.env") | env
        unknown += [f"command.{k}" for k in nested if k not in {"path", "args", "env"}]
    if command is not None and not isinstance(command, str):
        raise _Skip(f"`command` must be a string, got {_json_type(command)}")

    url = raw.get("url", raw.get("serverUrl"))
    if url is not None and not isinstance(url, str):
        raise _Skip(f"`url` must be a string, got {_json_type(url)}")
    if "url" in raw and "serverUrl" in raw:
        unknown.append("serverUrl")
    headers = _string_map(raw.get("headers"), "headers")
    cwd = raw.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise _Skip(f"`cwd` must be a string, got {_json_type(cwd)}")

    kind = raw.get("type")
    kind = kind.lower() if isinstance(kind, str) else None
    if kind is not None and kind != "stdio" and kind != "sse" and kind not in _HTTP_TYPES:
        raise _Skip(f"its type {raw['type']!r} is not supported (use stdio or http)")
    if kind == "stdio":
        url = None
    elif kind is not None:
        command = None
    if not command and not url:
        why = "it has neither `command` nor `url`"
        if raw.get("source") == "extension":
            why += " (a Zed extension runs it; add its command by hand)"
        raise _Skip(why)
    if command and url:
        warnings.append(f"{label!r}: has both `command` and `url`; imported the url")
        command = None
    if command is None:
        args, env = (), {}
    else:
        url, headers = None, {}
    if kind == "sse":
        warnings.append(
            f"{label!r}: uses the legacy SSE transport, but openheim speaks Streamable HTTP; "
            "imported the url anyway, check that it serves Streamable HTTP (often /mcp, not /sse)"
        )

    enabled = raw.get("enabled", True)
    disabled = raw.get("disabled", False)
    if not isinstance(enabled, bool) or not isinstance(disabled, bool):
        raise _Skip("`enabled` and `disabled` must be true or false")

    texts = [command or "", url or "", cwd or "", *args, *env, *env.values(), *headers.values()]
    texts += list(headers)
    if any(_has_surrogates(text) for text in texts):
        raise _Skip("it holds text that is not valid Unicode")
    if any("${" in text for text in texts):
        warnings.append(
            f"{label!r}: `${{...}}` placeholders are passed as written, openheim does not "
            "expand them; edit the values in the config"
        )
    if unknown:
        warnings.append(f"{label!r}: ignored unknown keys: {', '.join(unknown)}")
    return McpServerConfig(
        name=name,
        command=command,
        args=args,
        env=env,
        cwd=cwd if command is not None else None,
        url=url,
        headers=headers,
        enabled=enabled and not disabled,
    )


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Skip(f"`{key}` must be a list, got {_json_type(value)}")
    return tuple(_scalar_text(item, key) for item in value)


def _string_map(value: Any, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Skip(f"`{key}` must be an object, got {_json_type(value)}")
    return {name: _scalar_text(item, f"{key}.{name}") for name, item in value.items()}


def _scalar_text(value: Any, key: str) -> str:
    """Strings as they are; numbers and booleans as JSON writes them (clients accept them)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise _Skip(f"`{key}` holds {_json_type(value)}, not a string")


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def strip_jsonc(text: str) -> str:
    """JSON with comments and trailing commas (VS Code, Zed) as plain JSON. They become spaces,
    so line and column numbers in errors still point into the original text."""
    out = list(text)
    i, n = 0, len(text)
    in_string = False
    comma: int | None = None
    while i < n:
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            in_string = ch != '"'
        elif ch == '"':
            in_string, comma = True, None
        elif text.startswith("//", i) or text.startswith("/*", i):
            if text.startswith("//", i):
                end = text.find("\n", i)
                end = n if end == -1 else end
            else:
                end = text.find("*/", i + 2)
                if end == -1:  # unterminated: leave it for the JSON error to point at
                    break
                end += 2
            for k in range(i, end):
                if out[k] not in "\r\n":
                    out[k] = " "
            i = end
            continue
        elif ch == ",":
            comma = i
        elif ch in "}]":
            if comma is not None:
                out[comma] = " "
            comma = None
        elif not ch.isspace():
            comma = None
        i += 1
    return "".join(out)
