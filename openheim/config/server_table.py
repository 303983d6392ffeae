"""``[server]`` and the tokens file: who may connect to ``openheim serve``, and from where."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from openheim.config.convert import config_converter
from openheim.config.model import Config, ServerConfig
from openheim.config.provider_table import check_compact_at
from openheim.config.table import Table, config_error, settings_of
from openheim.foundation.errors import ConfigError

_TENANT_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ORIGIN_RE = re.compile(r"^https?://[^/\s?#]+$")
#: Shorter tokens are guessable; ``secrets.token_urlsafe(32)`` gives 43 characters.
MIN_TOKEN_LENGTH = 16
_TOKEN_FIX = (
    "use a random token of at least 16 characters, e.g. from "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
)


def read_server(table: Table) -> ServerConfig:
    table.check_keys(settings_of(ServerConfig))
    check_compact_at(table)
    built: dict[str, object] = {}
    for name in ("workspace_root", "tokens_file"):
        if (path := _path(table, name)) is not None:
            built[name] = path
    if "tokens" in table.data:
        built["tokens"] = read_token_map(table, "tokens")
    if "allowed_origins" in table.data:
        built["allowed_origins"] = _origins(table)
    return table.structure(ServerConfig, **built)


def _path(table: Table, name: str) -> Path | None:
    """A path setting; a relative one is taken from the config file's folder."""
    text = table.value(name, str)
    if text is None:
        return None
    if not text.strip():
        raise table.fail(name, "is empty", "give a folder path or remove the setting")
    path = Path(text).expanduser()
    return path if path.is_absolute() else (table.path.parent / path).absolute()


def read_token_map(table: Table, name: str) -> dict[str, str]:
    """``token = "tenant"`` pairs, checked for length and tenant-name syntax.

    Errors name the tenant, never the token: the message may end up in a log.
    """
    entries = table.child(name)
    tokens: dict[str, str] = {}
    for token, tenant in ({} if entries is None else entries.data).items():
        if not isinstance(tenant, str):
            raise table.fail(name, "values must be tenant names (strings)", "quote them")
        if len(token) < MIN_TOKEN_LENGTH or any(ch.isspace() for ch in token):
            raise table.fail(name, f"has a token for {tenant!r} that is too weak", _TOKEN_FIX)
        if not _TENANT_RE.match(tenant):
            raise table.fail(
                name,
                f"names tenant {tenant!r}",
                "use letters, digits, `_` and `-` only in tenant names",
            )
        tokens[token] = tenant
    return tokens


def _origins(table: Table) -> tuple[str, ...]:
    origins = []
    for origin in table.value("allowed_origins", tuple[str, ...]) or ():
        normal = origin.strip().rstrip("/").lower()
        if not _ORIGIN_RE.match(normal):
            raise table.fail(
                "allowed_origins",
                f"has {origin!r}, which is not an origin",
                'write scheme://host[:port] with no path, e.g. "https://app.example.com"',
            )
        origins.append(normal)
    return tuple(origins)


def read_tokens(config: Config) -> dict[str, str]:
    """The server's tokens: ``[server].tokens`` plus the ``[tokens]`` table of ``tokens_file``."""
    server = config.server
    tokens = dict(server.tokens)
    if server.tokens_file is None:
        return tokens
    path = server.tokens_file
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise config_error(
            config.path,
            "server.tokens_file",
            f"names {path}, which does not exist",
            "create it with a [tokens] table or remove the setting",
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the tokens file: {exc}") from None
    root = Table(path, "", data, config_converter())
    root.check_keys({"tokens"})
    for token, tenant in read_token_map(root, "tokens").items():
        if tokens.get(token, tenant) != tenant:
            raise config_error(path, "tokens", "gives a token to two tenants", "use one token each")
        tokens[token] = tenant
    return tokens
