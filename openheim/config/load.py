"""Reading ``config.toml`` with one-line errors that name the file, the key and the fix.

Each table is checked for unknown keys first (so a typo is reported as a typo, not as the
setting it misspells being missing), then structured into its attrs class, which alone holds
the defaults. Tables that are free maps (providers, MCP servers, prices, permissions, tokens)
take any name.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

from openheim.config.convert import config_converter
from openheim.config.model import Config, McpServerConfig, StoreConfig, ToolsConfig
from openheim.config.provider_table import read_providers
from openheim.config.sandbox_table import read_sandbox
from openheim.config.server_table import MIN_TOKEN_LENGTH, read_server, read_tokens
from openheim.config.table import NAME_RE, Table, settings_of
from openheim.foundation.errors import ConfigError
from openheim.permissions import PermissionPolicy, Policy

__all__ = [
    "MIN_TOKEN_LENGTH",
    "NAME_RE",
    "STORE_SCHEMES",
    "load_config",
    "parse_config",
    "read_tokens",
]

STORE_SCHEMES = ("postgresql://", "postgres://")


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Config file not found at {path}. Run `openheim init` to create one."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid TOML: {exc}. Fix the syntax there "
            "(or move the file away and run `openheim init`)."
        ) from None
    return read_config(Table(path, "", data, config_converter()))


def read_config(root: Table) -> Config:
    root.check_keys(settings_of(Config) - {"path"})
    providers = read_providers(root)
    first = next(iter(providers))
    default_provider = root.required(
        "default_provider", str, f'add `default_provider = "{first}"` at the top'
    )
    if default_provider not in providers:
        raise root.fail(
            "default_provider",
            f"names {default_provider!r}, which is not a configured provider",
            f"use one of {', '.join(sorted(providers))} or add [providers.{default_provider}]",
        )
    # A section the file leaves out takes its default from Config.
    sections: dict[str, object] = {}
    for name, read in _SECTIONS:
        table = root.child(name)
        if table is not None:
            sections[name] = read(table)
    return root.structure(
        Config, path=root.path, default_provider=default_provider, providers=providers, **sections
    )


def read_mcp_servers(table: Table) -> dict[str, McpServerConfig]:
    """``[mcp_servers.NAME]``: any name, each with exactly one transport."""
    servers = {}
    for name, entry in table.children():
        entry.check_name(name)
        entry.check_keys(settings_of(McpServerConfig) - {"name"})
        server = entry.structure(McpServerConfig, name=name)
        if (server.command is None) == (server.url is None):
            raise entry.fail_here(
                "needs exactly one of `command` (stdio) or `url` (Streamable HTTP)",
                "set one of them",
            )
        servers[name] = server
    return servers


def read_tools(table: Table) -> ToolsConfig:
    table.check_keys(settings_of(ToolsConfig))
    return table.structure(ToolsConfig)


def read_store(table: Table) -> StoreConfig:
    table.check_keys(settings_of(StoreConfig))
    url = table.value("url", str)
    if url is not None and not url.startswith(STORE_SCHEMES):
        raise table.fail(
            "url",
            "is not a PostgreSQL URL",
            'use "postgresql://USER@HOST/DB", or leave it out for the file store',
        )
    return table.structure(StoreConfig)


_POLICIES = tuple(policy.value for policy in Policy)


def read_permissions(table: Table) -> PermissionPolicy:
    """``[permissions]``: a free map of tool name to policy; ``default`` covers the rest."""
    policies: dict[str, Policy] = {}
    for name, value in table.data.items():
        fix = f"use one of {', '.join(_POLICIES)}"
        if isinstance(value, str) and value not in _POLICIES:
            raise table.fail(name, f"is {value!r}", fix)
        policies[name] = table.required(name, Policy, fix)
    default = {"default": policies.pop("default")} if "default" in policies else {}
    # Every key is a tool's name, so only the two built values are structured.
    return table.structure(PermissionPolicy, tools=policies, **default)


_SECTIONS: tuple[tuple[str, Callable[[Table], object]], ...] = (
    ("mcp_servers", read_mcp_servers),
    ("tools", read_tools),
    ("permissions", read_permissions),
    ("server", read_server),
    ("store", read_store),
    ("sandbox", read_sandbox),
)
