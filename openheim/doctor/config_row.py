"""The doctor's config rows: the file loaded (or why not), and whether others can read the
secrets written into it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from openheim.config.model import Config
from openheim.doctor.rows import Row, Status, plural


def config_row(config: Config) -> Row:
    default = config.providers[config.default_provider]
    enabled = sum(1 for server in config.mcp_servers.values() if server.enabled)
    detail = (
        f"loaded: {plural(len(config.providers), 'provider')}, "
        f"{plural(enabled, 'MCP server')}; default model {default.name}/{default.default_model}"
    )
    return Row("config", "", Status.OK, detail, data={"path": str(config.path)})


def config_fix(detail: str, path: Path, *, exists: bool) -> tuple[str, str]:
    """A fix for the loader's errors that do not spell one out as "; fix: ..."."""
    if not exists:
        return detail, "run `openheim init`"
    head, sep, _ = detail.partition(". Fix the syntax there")
    if sep:
        fix = "correct the TOML at the place named, or move the file away and run `openheim init`"
        return head, fix
    return detail, f"make {path} readable by this user"


def permission_rows(config: Config) -> list[Row]:
    """Secrets written into the file want it private; the loader cannot say so, we can."""
    holders = [f"providers.{p.name}.api_key" for p in config.providers.values() if p.api_key]
    holders += [f"mcp_servers.{s.name}" for s in config.mcp_servers.values() if s.env or s.headers]
    if config.server.tokens:
        holders.append("server.tokens")
    if config.store.url and urlsplit(config.store.url).password:
        holders.append("store.url")
    if not holders:
        return []
    try:
        readable = bool(config.path.stat().st_mode & 0o044)
    except OSError:
        return []
    if not readable:
        return []
    detail = f"other users can read it, and it holds secrets ({', '.join(holders)})"
    return [
        Row(
            "config",
            "",
            Status.WARN,
            detail,
            f"chmod 600 {config.path}",
            aspect="permissions",
        )
    ]
