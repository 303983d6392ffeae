"""``openheim mcp import``: other clients' MCP server JSON as ``[mcp_servers.NAME]`` tables.

``parse_servers`` (pure) reads the JSON of Claude Desktop, Claude Code, Cursor, Windsurf,
Cline, VS Code or Zed and returns server configs plus warnings; ``render_toml`` (pure) writes
them as TOML to append to ``config.toml``; ``append_to_config`` does the file work and never
rewrites what is already there. Nothing here imports the MCP SDK.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from openheim.config.load import NAME_RE, load_config, parse_config
from openheim.config.model import McpServerConfig
from openheim.config.template import DEFAULT_CONFIG
from openheim.errors import ConfigError
from openheim.fsutil import atomic_write

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
_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_DEFAULTS = attrs.fields(McpServerConfig)


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


# --- rendering -----------------------------------------------------------------------------


def toml_string(text: str) -> str:
    """A TOML basic string. JSON's escapes are TOML's, except that TOML also wants DEL escaped;
    ``ensure_ascii=False`` because TOML rejects JSON's surrogate-pair escapes."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_key(key: str) -> str:
    return key if _BARE_KEY_RE.match(key) else toml_string(key)


def render_toml(servers: Iterable[McpServerConfig], source: str | None = None) -> str:
    """``[mcp_servers.NAME]`` tables for ``servers``, only non-default keys; "" for none."""
    lines: list[str] = []
    for server in servers:
        if lines:
            lines.append("")
        table = f"mcp_servers.{toml_key(server.name)}"
        lines.append(f"[{table}]")
        if server.command is not None:
            lines.append(f"command = {toml_string(server.command)}")
        if server.args:
            lines.append(f"args = [{', '.join(toml_string(a) for a in server.args)}]")
        if server.cwd is not None:
            lines.append(f"cwd = {toml_string(server.cwd)}")
        if server.url is not None:
            lines.append(f"url = {toml_string(server.url)}")
        if not server.enabled:
            lines.append("enabled = false")
        for field in (_DEFAULTS.startup_timeout_secs, _DEFAULTS.tool_timeout_secs):
            value = getattr(server, field.name)
            if value != field.default:
                lines.append(f"{field.name} = {value!r}")
        for key, values in (("env", server.env), ("headers", server.headers)):
            if values:
                lines += ["", f"[{table}.{key}]"]
                lines += [f"{toml_key(k)} = {toml_string(v)}" for k, v in values.items()]
    if not lines:
        return ""
    if source is not None:
        origin = " ".join(source.splitlines())
        lines.insert(0, f"# Imported from {origin} by `openheim mcp import`.")
    return "\n".join(lines) + "\n"


def describe(server: McpServerConfig, limit: int = 72) -> str:
    """``stdio: npx -y pkg; env: KEY`` for the summary: names of env and headers, no values,
    and no query string or credentials of a URL."""
    if server.command is not None:
        where = "stdio: " + shlex.join([server.command, *server.args])
    else:
        parts = urlsplit(server.url or "")
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        shown = f"{parts.scheme}://{host}{parts.path}" if parts.scheme else (server.url or "")
        where = "http: " + shown + ("?..." if parts.query else "")
    if len(where) > limit:
        where = where[: limit - 3] + "..."
    details = [where]
    if server.env:
        details.append("env: " + ", ".join(server.env))
    if server.headers:
        details.append("headers: " + ", ".join(server.headers))
    if not server.enabled:
        details.append("disabled")
    return f"{server.name} ({'; '.join(details)})"


# --- files ---------------------------------------------------------------------------------


def origin(file: str) -> str:
    """Where the servers came from, for the comment above them in the config."""
    return "stdin" if file == "-" else str(Path(file).expanduser().absolute())


def read_source(file: str) -> tuple[str, str]:
    """``(name for messages, text)`` of the file to import; ``-`` reads stdin."""
    if file == "-":
        return "<stdin>", sys.stdin.read()
    path = Path(file).expanduser()
    try:
        return file, path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file; fix: check the path") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text; fix: give the JSON config file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it: {exc.strerror or exc}") from None


def configured_names(config_file: Path) -> frozenset[str]:
    """Names in ``[mcp_servers]`` of the config, which must load; none without a config."""
    if not config_file.exists():
        return frozenset()
    return frozenset(load_config(config_file).mcp_servers)


def split_new(
    servers: Sequence[McpServerConfig], existing: Iterable[str]
) -> tuple[tuple[McpServerConfig, ...], tuple[str, ...]]:
    """``(servers to add, names skipped because the config has them)``."""
    taken = set(existing)
    new = tuple(s for s in servers if s.name not in taken)
    return new, tuple(s.name for s in servers if s.name in taken)


@attrs.frozen
class Appended:
    text: bytes
    original: bytes | None  # None: the config did not exist


def plan_append(config_file: Path, toml_text: str) -> Appended:
    """The config with ``toml_text`` appended (or the ``openheim init`` template plus it when
    there is no config), checked by the real loader. Writes nothing."""
    try:
        original: bytes | None = config_file.read_bytes()
    except FileNotFoundError:
        original = None
    except OSError as exc:
        raise ConfigError(f"{config_file}: cannot read the config file: {exc}") from None
    base = DEFAULT_CONFIG.encode("utf-8") if original is None else original
    newline = b"\r\n" if b"\r\n" in base else b"\n"
    if base and not base.endswith(b"\n"):
        base += newline
    addition = toml_text.encode("utf-8")
    if newline != b"\n":
        addition = addition.replace(b"\n", newline)
    text = base + (newline if base else b"") + addition
    try:
        parse_config(text.decode("utf-8"), config_file)
    except UnicodeDecodeError:
        raise ConfigError(f"{config_file}: cannot read the config file: not UTF-8") from None
    return Appended(text, original)


def append_to_config(config_file: Path, plan: Appended) -> None:
    """Write ``plan`` atomically, load it back, and restore the old file if that fails."""
    try:
        atomic_write(config_file, plan.text)
    except OSError as exc:
        raise ConfigError(f"{config_file}: cannot write the config file: {exc}") from None
    try:
        load_config(config_file)
    except ConfigError as error:
        try:
            if plan.original is None:
                config_file.unlink(missing_ok=True)
            else:
                atomic_write(config_file, plan.original)
        except OSError as exc:
            raise ConfigError(f"{error} Restoring the old file also failed: {exc}") from None
        raise


def readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & 0o044)
    except OSError:
        return False


def holds_secrets(servers: Iterable[McpServerConfig]) -> bool:
    return any(s.env or s.headers for s in servers)
