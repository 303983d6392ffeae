"""Reading ``config.toml`` with one-line errors that name the file, the key and the fix."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from openheim.config.model import (
    DEFAULT_MAX_REPLY_BYTES,
    DEFAULT_MAX_REPLY_SECS,
    ClientMcpPolicy,
    Config,
    DisconnectPolicy,
    McpServerConfig,
    ModelPrice,
    ProviderConfig,
    ProviderKind,
    ServerConfig,
    StoreConfig,
    ToolsConfig,
)
from openheim.config.sandbox_table import read_sandbox
from openheim.errors import ConfigError
from openheim.permissions import PermissionPolicy, Policy

T = TypeVar("T")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TENANT_RE = re.compile(r"^[A-Za-z0-9_-]+$")
STORE_SCHEMES = ("postgresql://", "postgres://")
_ORIGIN_RE = re.compile(r"^https?://[^/\s?#]+$")
#: Shorter tokens are guessable; ``secrets.token_urlsafe(32)`` gives 43 characters.
MIN_TOKEN_LENGTH = 16
_TOKEN_FIX = (
    "use a random token of at least 16 characters, e.g. from "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
)


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
    return _ConfigReader(path).read(data)


@attrs.define
class _Table:
    """A TOML table being read: remembers the dotted key path and which keys were used."""

    reader: _ConfigReader
    where: str
    data: Mapping[str, Any]
    used: set[str] = attrs.field(factory=set)

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, problem: str, fix: str) -> ConfigError:
        return self.reader.error(self.key(name), problem, fix)

    def get(
        self,
        name: str,
        kind: type[T] | tuple[type, ...],
        default: Any = None,
        *,
        required: bool = False,
        fix: str = "",
    ) -> Any:
        self.used.add(name)
        if name not in self.data:
            if required:
                raise self.fail(name, "is missing", fix or f"add `{name} = ...` to [{self.where}]")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; TOML keeps them apart and so do we.
        misfit = isinstance(value, bool) and bool not in kinds
        if misfit or not isinstance(value, kinds):
            wanted = "a number" if set(kinds) == {int, float} else _type_word(kinds[0])
            raise self.fail(
                name, f"must be {wanted}, got {_type_word(type(value))}", fix or f"set {wanted}"
            )
        return value

    def number(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        value = self.get(name, (int, float), default)
        if value < 0 or (value == 0 and not allow_zero):
            bound = "at least 0" if allow_zero else "greater than 0"
            raise self.fail(name, f"must be {bound}, got {value}", "change it")
        return float(value)

    def integer(self, name: str, default: int | None, *, minimum: int) -> int | None:
        value = self.get(name, int, default)
        if value is not None and value < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {value}", "raise it")
        return value

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(name, list, None)
        if value is None:
            return default
        if not all(isinstance(item, str) for item in value):
            raise self.fail(name, "must be a list of strings", 'write it as ["a", "b"]')
        return tuple(value)

    def string_map(self, name: str) -> dict[str, str]:
        value = self.get(name, dict, None)
        if value is None:
            return {}
        if not all(isinstance(v, str) for v in value.values()):
            raise self.fail(name, "values must be strings", "quote every value")
        return dict(value)

    def table(self, name: str) -> _Table | None:
        value = self.get(name, dict, None)
        return None if value is None else _Table(self.reader, self.key(name), value)

    def reject_unknown(self) -> None:
        for name in self.data:
            if name not in self.used:
                close = difflib.get_close_matches(name, sorted(self.used), n=1)
                fix = f"did you mean `{close[0]}`?" if close else "remove it"
                raise self.fail(name, "is not a known setting", fix)


@attrs.frozen
class _ConfigReader:
    path: Path

    def error(self, key: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.path}: `{key}` {problem}; fix: {fix}.")

    def read(self, data: Mapping[str, Any]) -> Config:
        root = _Table(self, "", data)
        providers_table = root.table("providers")
        if providers_table is None or not providers_table.data:
            raise self.error(
                "providers", "has no entries", "add a [providers.NAME] table (see `openheim init`)"
            )
        providers = {
            name: self._provider(name, providers_table.table(name))  # type: ignore[arg-type]
            for name in providers_table.data
        }
        default_provider = root.get(
            "default_provider",
            str,
            required=True,
            fix=f'add `default_provider = "{next(iter(providers))}"` at the top',
        )
        if default_provider not in providers:
            raise root.fail(
                "default_provider",
                f"names {default_provider!r}, which is not a configured provider",
                f"use one of {', '.join(sorted(providers))} or add [providers.{default_provider}]",
            )
        max_iterations = root.integer("max_iterations", 10, minimum=1)
        system_prompt = root.get("system_prompt", str)
        mcp_table = root.table("mcp_servers")
        mcp_servers = {}
        if mcp_table is not None:
            mcp_servers = {
                name: self._mcp_server(name, mcp_table.table(name))  # type: ignore[arg-type]
                for name in mcp_table.data
            }
        tools = self._tools(root.table("tools"))
        permissions = self._permissions(root.table("permissions"))
        server = self._server(root.table("server"))
        store = self._store(root.table("store"))
        sandbox = read_sandbox(root.table("sandbox"))
        root.reject_unknown()
        return Config(
            path=self.path,
            default_provider=default_provider,
            providers=providers,
            max_iterations=max_iterations,  # type: ignore[arg-type]
            system_prompt=system_prompt,
            mcp_servers=mcp_servers,
            tools=tools,
            permissions=permissions,
            server=server,
            store=store,
            sandbox=sandbox,
        )

    def _store(self, table: _Table | None) -> StoreConfig:
        if table is None:
            return StoreConfig()
        url = table.get("url", str)
        if url is not None and not url.startswith(STORE_SCHEMES):
            raise table.fail(
                "url",
                "is not a PostgreSQL URL",
                'use "postgresql://USER@HOST/DB", or leave it out for the file store',
            )
        store = StoreConfig(
            url=url,
            url_env=table.get("url_env", str, "OPENHEIM_STORE_URL"),
            pool_size=table.integer("pool_size", 10, minimum=1),  # type: ignore[arg-type]
        )
        table.reject_unknown()
        return store

    def _permissions(self, table: _Table | None) -> PermissionPolicy:
        if table is None:
            return PermissionPolicy()
        choices = ", ".join(p.value for p in Policy)
        values: dict[str, Policy] = {}
        for name in table.data:
            text = table.get(
                name, str, fix=f'use "{Policy.ALLOW}", "{Policy.ASK}" or "{Policy.DENY}"'
            )
            try:
                values[name] = Policy(text)
            except ValueError:
                raise table.fail(name, f"is {text!r}", f"use one of {choices}") from None
        default = values.pop("default", Policy.ALLOW)
        return PermissionPolicy(default=default, tools=values)

    def _check_name(self, table: _Table, name: str) -> None:
        if not NAME_RE.match(name):
            raise self.error(
                table.where, "has an invalid name", "use letters, digits, `_`, `-` and `.` only"
            )

    def _provider(self, name: str, table: _Table) -> ProviderConfig:
        self._check_name(table, name)
        kind_text = table.get("kind", str)
        if kind_text is None:
            kind = ProviderKind.infer(name)
        else:
            try:
                kind = ProviderKind(kind_text)
            except ValueError:
                choices = ", ".join(k.value for k in ProviderKind)
                raise table.fail("kind", f"is {kind_text!r}", f"use one of {choices}") from None
        api_base = table.get("api_base", str, required=True, fix=_api_base_fix(kind))
        if not re.match(r"^https?://[^/\s]+", api_base):
            raise table.fail(
                "api_base", f"is not an http(s) URL: {api_base!r}", _api_base_fix(kind)
            )
        models = table.strings("models")
        default_model = table.get("default_model", str)
        if default_model is None:
            if not models:
                raise table.fail(
                    "default_model",
                    "is missing",
                    'add `default_model = "..."` and `models = [...]`',
                )
            default_model = models[0]
        if default_model not in models:
            models = (default_model, *models)
        env_var = table.get("env_var", str)
        if env_var is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", env_var):
            raise table.fail(
                "env_var",
                f"is not an environment variable name: {env_var!r}",
                "e.g. OPENAI_API_KEY",
            )
        provider = ProviderConfig(
            name=name,
            kind=kind,
            api_base=api_base.rstrip("/"),
            default_model=default_model,
            models=models,
            env_var=env_var or None,
            api_key=table.get("api_key", str) or None,
            timeout_secs=table.number("timeout_secs", 120.0),
            connect_timeout_secs=table.number("connect_timeout_secs", 10.0),
            max_tokens=table.integer("max_tokens", None, minimum=1),
            max_retries=table.integer("max_retries", 4, minimum=0),  # type: ignore[arg-type]
            retry_initial_delay_secs=table.number("retry_initial_delay_secs", 1.0),
            retry_max_delay_secs=table.number("retry_max_delay_secs", 60.0),
            max_in_flight=table.integer("max_in_flight", None, minimum=1),
            requests_per_minute=self._optional_number(table, "requests_per_minute"),
            recover_text_tool_calls=table.get(
                "recover_text_tool_calls", bool, kind is ProviderKind.OPENAI_COMPATIBLE
            ),
            max_reply_bytes=table.integer(  # type: ignore[arg-type]
                "max_reply_bytes", DEFAULT_MAX_REPLY_BYTES, minimum=1024
            ),
            max_reply_secs=table.number("max_reply_secs", DEFAULT_MAX_REPLY_SECS),
            prices=self._prices(table.table("prices")),
        )
        table.reject_unknown()
        return provider

    @staticmethod
    def _optional_number(table: _Table, name: str) -> float | None:
        if name not in table.data:
            table.used.add(name)
            return None
        return table.number(name, 0.0)

    def _prices(self, table: _Table | None) -> dict[str, ModelPrice]:
        if table is None:
            return {}
        prices = {}
        for model in table.data:
            entry = table.table(model)
            assert entry is not None
            if "input" not in entry.data or "output" not in entry.data:
                raise entry.fail(
                    "input" if "input" not in entry.data else "output",
                    "is missing",
                    "give `input` and `output` in US dollars per million tokens",
                )
            prices[model] = ModelPrice(
                input=entry.number("input", 0.0, allow_zero=True),
                output=entry.number("output", 0.0, allow_zero=True),
                cache_read=self._optional_price(entry, "cache_read"),
                cache_write=self._optional_price(entry, "cache_write"),
            )
            entry.reject_unknown()
        return prices

    @staticmethod
    def _optional_price(table: _Table, name: str) -> float | None:
        if name not in table.data:
            table.used.add(name)
            return None
        return table.number(name, 0.0, allow_zero=True)

    def _mcp_server(self, name: str, table: _Table) -> McpServerConfig:
        self._check_name(table, name)
        server = McpServerConfig(
            name=name,
            command=table.get("command", str),
            args=table.strings("args"),
            env=table.string_map("env"),
            cwd=table.get("cwd", str),
            url=table.get("url", str),
            headers=table.string_map("headers"),
            enabled=table.get("enabled", bool, True),
            startup_timeout_secs=table.number("startup_timeout_secs", 30.0),
            tool_timeout_secs=table.number("tool_timeout_secs", 120.0),
        )
        if (server.command is None) == (server.url is None):
            raise self.error(
                table.where,
                "needs exactly one of `command` (stdio) or `url` (Streamable HTTP)",
                "set one of them",
            )
        table.reject_unknown()
        return server

    def _tools(self, table: _Table | None) -> ToolsConfig:
        if table is None:
            return ToolsConfig()
        tools = ToolsConfig(
            command_timeout_secs=table.number("command_timeout_secs", 120.0),
            output_limit_bytes=table.integer("output_limit_bytes", 64 * 1024, minimum=1024),  # type: ignore[arg-type]
            read_limit_bytes=table.integer("read_limit_bytes", 256 * 1024, minimum=1024),  # type: ignore[arg-type]
        )
        table.reject_unknown()
        return tools

    def _server(self, table: _Table | None) -> ServerConfig:
        if table is None:
            return ServerConfig()
        policy_text = table.get("on_disconnect", str, DisconnectPolicy.KEEP.value)
        try:
            policy = DisconnectPolicy(policy_text)
        except ValueError:
            raise table.fail(
                "on_disconnect", f"is {policy_text!r}", 'use "keep" or "cancel"'
            ) from None
        mcp_text = table.get("client_mcp_servers", str)
        try:
            client_mcp = ClientMcpPolicy(mcp_text) if mcp_text is not None else None
        except ValueError:
            raise table.fail(
                "client_mcp_servers", f"is {mcp_text!r}", 'use "all", "http" or "none"'
            ) from None
        server = ServerConfig(
            workspace_root=self._path(table, "workspace_root"),
            tokens=self._tokens(table, "tokens", table.get("tokens", dict, {})),
            tokens_file=self._path(table, "tokens_file"),
            disconnect_grace_secs=table.number("disconnect_grace_secs", 300.0, allow_zero=True),
            slow_client_timeout_secs=table.number("slow_client_timeout_secs", 10.0),
            on_disconnect=policy,
            max_sessions_per_tenant=table.integer("max_sessions_per_tenant", 100, minimum=1),  # type: ignore[arg-type]
            max_turns_per_tenant=table.integer("max_turns_per_tenant", 8, minimum=1),  # type: ignore[arg-type]
            max_frame_bytes=table.integer("max_frame_bytes", 4 * 1024 * 1024, minimum=1024),  # type: ignore[arg-type]
            allowed_origins=self._origins(table),
            metrics_token=table.get("metrics_token", str),
            client_mcp_servers=client_mcp,
            max_workspace_bytes=table.integer(  # type: ignore[arg-type]
                "max_workspace_bytes", 1024 * 1024 * 1024, minimum=0
            ),
        )
        table.reject_unknown()
        return server

    def _path(self, table: _Table, name: str) -> Path | None:
        """A path setting; a relative one is taken from the config file's folder."""
        text = table.get(name, str)
        if text is None:
            return None
        if not text.strip():
            raise table.fail(name, "is empty", "give a folder path or remove the setting")
        path = Path(text).expanduser()
        return path if path.is_absolute() else (self.path.parent / path).absolute()

    def _tokens(self, table: _Table, name: str, value: Mapping[str, Any]) -> dict[str, str]:
        """``token = "tenant"`` pairs, checked for length and tenant-name syntax."""
        tokens: dict[str, str] = {}
        for token, tenant in value.items():
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

    @staticmethod
    def _origins(table: _Table) -> tuple[str, ...]:
        origins = []
        for origin in table.strings("allowed_origins"):
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
        raise ConfigError(
            f"{config.path}: `server.tokens_file` names {path}, which does not exist; "
            "fix: create it with a [tokens] table or remove the setting."
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the tokens file: {exc}") from None
    reader = _ConfigReader(path)
    root = _Table(reader, "", data)
    from_file = reader._tokens(root, "tokens", root.get("tokens", dict, {}))
    root.reject_unknown()
    for token, tenant in from_file.items():
        if tokens.get(token, tenant) != tenant:
            raise reader.error("tokens", "gives a token to two tenants", "use one token each")
        tokens[token] = tenant
    return tokens


def _api_base_fix(kind: ProviderKind) -> str:
    examples = {
        ProviderKind.OPENAI: "https://api.openai.com/v1",
        ProviderKind.ANTHROPIC: "https://api.anthropic.com/v1",
        ProviderKind.GEMINI: "https://generativelanguage.googleapis.com/v1beta",
        ProviderKind.OPENAI_COMPATIBLE: "http://localhost:11434/v1",
    }
    return f'set `api_base = "{examples[kind]}"` or your endpoint\'s URL'


_TYPE_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def _type_word(kind: type) -> str:
    return _TYPE_WORDS.get(kind, kind.__name__)
