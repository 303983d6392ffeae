"""``openheim mcp import``, writing: server configs as ``[mcp_servers.NAME]`` tables.

``render_toml`` (pure) writes the TOML to append to ``config.toml``; ``append_to_config`` does
the file work and never rewrites what is already there.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from openheim.config.load import load_config, parse_config
from openheim.config.model import McpServerConfig
from openheim.config.template import DEFAULT_CONFIG
from openheim.foundation.errors import ConfigError
from openheim.foundation.fsutil import atomic_write

_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_DEFAULTS = attrs.fields(McpServerConfig)

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
