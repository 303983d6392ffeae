"""The checks behind ``openheim doctor``: each returns rows, none prints anything.

Independent checks run at once in one nursery, each under its own deadline, so a dead
endpoint or a hanging MCP server delays only its own row. Nothing here writes to the user's
data: the file store gets a probe file that is removed again, and PostgreSQL is only read
(migrations stay the job of ``run`` and ``serve``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import trio

from openheim.config.load import load_config, read_tokens
from openheim.config.model import Config, McpServerConfig, ProviderConfig, ServerConfig
from openheim.config.paths import Paths
from openheim.config.resolve import resolve_api_key
from openheim.doctor.disk_row import check_private_files
from openheim.doctor.rows import Report, Row, Status, scrub
from openheim.doctor.sandbox_row import check_sandbox
from openheim.errors import ConfigError
from openheim.fsutil import make_folders
from openheim.redact import strip_url_credentials

log = logging.getLogger(__name__)

#: Longest wait for a provider's ``GET /models`` (less if the provider's timeout is shorter).
PROBE_TIMEOUT_SECS = 10.0
#: Longest wait to connect to the history database and read its schema version.
STORE_TIMEOUT_SECS = 10.0
#: Extra time granted over ``startup_timeout_secs`` for spawning the process itself.
MCP_SLACK_SECS = 5.0
#: The module of each provider kind's dialect (the rest speak OpenAI's).
_DIALECT_MODULES = {"anthropic": "anthropic", "gemini": "gemini"}
#: Bytes of an error response read for its message.
ERROR_BODY_LIMIT = 16 * 1024


async def run_doctor(
    env: Mapping[str, str],
    *,
    paths: Paths | None = None,
    probe_secs: float = PROBE_TIMEOUT_SECS,
) -> Report:
    """Every check, in a fixed row order whatever order they finish in."""
    paths = paths or Paths.from_env(env)
    config_path = paths.config_file
    try:
        config = await trio.to_thread.run_sync(load_config, config_path)
    except ConfigError as exc:
        detail, fix = split_fix(str(exc))
        if fix is None:
            exists = await trio.Path(config_path).exists()
            detail, fix = _config_fix(detail, config_path, exists=exists)
        return Report(config_path, [Row("config", "", Status.FAIL, detail, fix)])

    _preload(config, env)
    rows: list[Row] = [_config_row(config), *_permission_rows(config)]
    slots: list[list[Row]] = []

    def slot(
        make: Callable[[], Awaitable[list[Row]]], check: str, subject: str = ""
    ) -> Callable[[], Awaitable[None]]:
        found: list[Row] = []
        slots.append(found)

        async def run() -> None:
            try:
                found.extend(await make())
            except Exception as exc:  # a bug in one check must not hide the others
                log.debug("doctor check %s %s failed", check, subject, exc_info=True)
                detail = f"the check itself failed: {type(exc).__name__}: {exc}"
                found.append(Row(check, subject, Status.FAIL, detail, "report this as a bug"))

        return run

    jobs = [
        slot(partial(check_provider, config, p, env, probe_secs), "provider", p.name)
        for p in _provider_order(config)
    ]
    jobs.append(slot(partial(check_mcp_servers, config, paths), "mcp"))
    jobs.append(slot(partial(check_store, config, paths, env), "store"))
    jobs.append(slot(partial(check_server, config), "server"))
    tenants = bool(config.server.tokens or config.server.tokens_file)
    jobs.append(slot(partial(check_sandbox, config, env, tenants=tenants), "sandbox"))
    jobs.append(slot(partial(check_private_files, paths), "disk"))
    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(job)
    for found in slots:
        rows.extend(found)
    return Report(config_path, scrub(rows, _secrets(config, env)))


def _preload(config: Config, env: Mapping[str, str]) -> None:
    """Import what the checks need before any starts: an import blocks the event loop, and
    one done inside a check would count into another check's latency."""
    names = ["httpx", "openheim.providers.client"]
    for kind in {provider.kind for provider in config.providers.values()}:
        names.append(f"openheim.providers.{_DIALECT_MODULES.get(kind, 'openai')}")
    if any(server.enabled for server in config.mcp_servers.values()):
        names += ["mcp.client.session", "mcp.client.stdio", "openheim.mcp.supervisor"]
    if config.store.url or env.get(config.store.url_env, "").strip():
        names.append("openheim.store.postgres")
    for name in names:
        with contextlib.suppress(ImportError):  # the check itself reports a missing psycopg
            importlib.import_module(name)


def _config_fix(detail: str, path: Path, *, exists: bool) -> tuple[str, str]:
    """A fix for the loader's errors that do not spell one out as "; fix: ..."."""
    if not exists:
        return detail, "run `openheim init`"
    head, sep, _ = detail.partition(". Fix the syntax there")
    if sep:
        fix = "correct the TOML at the place named, or move the file away and run `openheim init`"
        return head, fix
    return detail, f"make {path} readable by this user"


def split_fix(message: str) -> tuple[str, str | None]:
    """Our errors read "problem; fix: what to do." — the table shows the two apart."""
    head, sep, fix = message.partition("; fix: ")
    if not sep:
        return message, None
    return head, fix.rstrip(".")


# --- config -------------------------------------------------------------------------------


def _config_row(config: Config) -> Row:
    default = config.providers[config.default_provider]
    enabled = sum(1 for server in config.mcp_servers.values() if server.enabled)
    detail = (
        f"loaded: {_plural(len(config.providers), 'provider')}, "
        f"{_plural(enabled, 'MCP server')}; default model {default.name}/{default.default_model}"
    )
    return Row("config", "", Status.OK, detail, data={"path": str(config.path)})


def _permission_rows(config: Config) -> list[Row]:
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


# --- providers -----------------------------------------------------------------------------


def _provider_order(config: Config) -> list[ProviderConfig]:
    """The default provider first, then the rest as written."""
    default = config.providers[config.default_provider]
    return [default, *(p for p in config.providers.values() if p is not default)]


async def check_provider(
    config: Config, provider: ProviderConfig, env: Mapping[str, str], probe_secs: float
) -> list[Row]:
    """Two rows: where the key comes from, and what ``GET {api_base}/models`` answers."""
    key_row, key = provider_key_row(config, provider, env)
    endpoint = await probe_endpoint(
        provider,
        key,
        key_missing=key_row.data.get("key_source") == "missing",
        probe_secs=probe_secs,
    )
    return [key_row, endpoint]


def provider_key_row(
    config: Config, provider: ProviderConfig, env: Mapping[str, str]
) -> tuple[Row, str | None]:
    """Decided by ``resolve_api_key`` itself, so doctor and ``run`` never disagree."""
    name, var = provider.name, provider.env_var

    def row(status: Status, detail: str, fix: str | None = None, source: str = "") -> Row:
        return Row("provider", name, status, detail, fix, "key", {"key_source": source})

    # Only the default provider's key is required: another provider without a key is
    # merely unusable until it gets one (`openheim init` lists several).
    missing = Status.FAIL if name == config.default_provider else Status.WARN
    try:
        key = resolve_api_key(config.path, provider, env)
    except ConfigError:
        if var:
            detail, fix = f"MISSING: ${var} is not set", f"export {var}=<your key>"
            return row(missing, detail, fix, source="missing"), None
        fix = (
            f'add `env_var = "{name.upper()}_API_KEY"` to [providers.{name}] in {config.path} '
            "and export that variable"
        )
        return row(missing, "MISSING: no `env_var` and no `api_key`", fix, "missing"), None
    if key is None:
        return row(Status.OK, f"not needed ({provider.kind.value} server)", source="none"), None
    if var and env.get(var, "").strip():
        return row(Status.OK, f"found in ${var}", source="env"), key
    unset = f" (${var} is not set)" if var else ""
    return row(Status.OK, f"inline `api_key` in the config{unset}", source="inline"), key


async def probe_endpoint(
    provider: ProviderConfig, key: str | None, *, key_missing: bool, probe_secs: float
) -> Row:
    """``GET {api_base}/models`` with the headers the provider's dialect sends.

    It costs no tokens and every kind serves it; a server without a listing (404/405) still
    proves the address answers. The auth headers come from the dialect's own request
    builder, so the probe authenticates exactly as a real request would.
    """
    import httpx

    from openheim.providers.base import ChatRequest
    from openheim.providers.client import build_http_client, make_dialect

    dialect = make_dialect(provider)
    sample = dialect.build_request(ChatRequest(model=provider.default_model, messages=()), key)
    headers = {
        name: value
        for name, value in sample.headers.items()
        if name.lower() not in ("content-type", "accept")
    }
    headers["accept"] = "application/json"
    base = strip_url_credentials(provider.api_base)
    url = f"{provider.api_base}/models"
    limit = min(probe_secs, provider.timeout_secs)
    data: dict[str, Any] = {"url": f"{base}/models"}

    def row(status: Status, detail: str, fix: str | None = None) -> Row:
        return Row("provider", provider.name, status, detail, fix, "endpoint", data)

    unreachable_fix = (
        f"check `api_base` in [providers.{provider.name}], your network or proxy, "
        "and that the server runs"
    )
    http = build_http_client(provider)  # made before the clock starts: TLS setup is slow
    try:
        async with http:
            with trio.fail_after(limit):
                started = trio.current_time()
                async with http.stream("GET", url, headers=headers) as response:
                    elapsed = trio.current_time() - started
                    body = await _read_limited(response, ERROR_BODY_LIMIT)
    except trio.TooSlowError:
        return row(Status.FAIL, f"unreachable: no answer within {limit:g} s", unreachable_fix)
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        return row(Status.FAIL, f"unreachable: {reason} ({base})", unreachable_fix)
    status_code = response.status_code
    ms = round(elapsed * 1000)
    data.update(http_status=status_code, latency_ms=ms)
    answered = f"{base} answered in {ms} ms"
    if 200 <= status_code < 300:
        models = _count_models(body)
        listed = f", {_plural(models, 'model')} listed" if models is not None else ""
        checked = "key not checked" if key is None else "key accepted"
        if models is not None:
            data["models_listed"] = models
        return row(Status.OK, f"OK, {answered} ({checked}{listed})")
    if 300 <= status_code < 400:
        location = strip_url_credentials(response.headers.get("location", "?"))
        return row(
            Status.FAIL,
            f"redirected to {location} (HTTP {status_code}); requests do not follow redirects",
            f"set `api_base` in [providers.{provider.name}] to the URL it redirects to",
        )
    message = dialect.parse_error(status_code, response.headers, body).message
    rejected = status_code in (401, 403) or (status_code == 400 and "api key" in message.lower())
    if rejected:
        if key_missing:
            return row(Status.OK, f"reachable, {answered} (key not checked: none configured)")
        if key is None:
            fix = (
                f'this server wants a key: add `env_var = "{provider.name.upper()}_API_KEY"` '
                f"to [providers.{provider.name}] and export it"
            )
            return row(Status.FAIL, f"key required (HTTP {status_code}): {message}", fix)
        where = f"${provider.env_var}" if provider.env_var else "`api_key`"
        fix = f"check the key in {where}: is it valid, and for this provider ({base})?"
        return row(Status.FAIL, f"key rejected (HTTP {status_code}): {message}", fix)
    if status_code in (404, 405):
        return row(Status.OK, f"reachable, {answered} (no model listing: HTTP {status_code})")
    if status_code == 429:
        return row(
            Status.WARN,
            f"reachable but rate-limited, {answered} (HTTP 429): {message}",
            "wait, or lower `requests_per_minute` / `max_in_flight` for this provider",
        )
    if status_code >= 500:
        return row(
            Status.WARN,
            f"reachable but failing, {answered} (HTTP {status_code}): {message}",
            "the provider has trouble; try again later or check its status page",
        )
    return row(
        Status.FAIL,
        f"HTTP {status_code} from {base}/models: {message}",
        f"check `api_base` and the key of [providers.{provider.name}]",
    )


async def _read_limited(response: Any, limit: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def _count_models(body: bytes) -> int | None:
    """``data`` (OpenAI, Anthropic, Ollama, vLLM) or ``models`` (Gemini); else unknown."""
    import json

    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    for field in ("data", "models"):
        if isinstance(payload.get(field), list):
            return len(payload[field])
    return None


# --- MCP servers ---------------------------------------------------------------------------


async def check_mcp_servers(config: Config, paths: Paths) -> list[Row]:
    """Start every enabled server as ``run`` would, wait until each connects or fails, stop.

    Their stderr goes to the usual log files, so a failure can point at them.
    """
    servers = list(config.mcp_servers.values())
    results: dict[str, Row] = {}
    for server in servers:
        if not server.enabled:
            detail = "disabled (`enabled = false`); not started"
            results[server.name] = Row("mcp", server.name, Status.SKIP, detail)
    enabled = [server for server in servers if server.enabled]
    if enabled:
        from openheim.mcp.supervisor import open_mcp_supervisor

        started = trio.current_time()
        async with (
            open_mcp_supervisor(enabled, log_dir=paths.logs_dir) as supervisor,
            trio.open_nursery() as nursery,
        ):
            for actor in supervisor.actors.values():
                nursery.start_soon(_settle, actor, started, results)
    return [results[server.name] for server in servers]


async def _settle(actor: Any, started: float, results: dict[str, Row]) -> None:
    from openheim.mcp.actor import ServerState

    server: McpServerConfig = actor.config
    limit = server.startup_timeout_secs + MCP_SLACK_SECS
    status = None
    with trio.move_on_after(limit):
        status = await actor.wait_settled()
    elapsed = trio.current_time() - started
    where = (
        f"http: {strip_url_credentials(server.url)}" if server.url else f"stdio: {server.command}"
    )
    data: dict[str, Any] = {"transport": server.transport, "elapsed_ms": round(elapsed * 1000)}
    if actor.log_path is not None and server.transport == "stdio":
        data["log"] = str(actor.log_path)
    if status is not None and status.state is ServerState.CONNECTED:
        data |= {"tool_count": status.tool_count, "tools": [t.name for t in actor.tools]}
        detail = f"connected in {elapsed:.1f} s, {_plural(status.tool_count, 'tool')} ({where})"
        results[server.name] = Row("mcp", server.name, Status.OK, detail, data=data)
        return
    error = status.error if status is not None else f"did not start within {limit:g} s"
    detail = f"failed: {error} ({where})"
    results[server.name] = Row(
        "mcp", server.name, Status.FAIL, detail, _mcp_fix(server, error, actor.log_path), data=data
    )


def _mcp_fix(server: McpServerConfig, error: str | None, log_path: Path | None) -> str:
    table = f"[mcp_servers.{server.name}]"
    log_hint = f"; its stderr is in {log_path}" if log_path and server.transport == "stdio" else ""
    error = error or ""
    if error.startswith("command not found"):
        return f"install {server.command} or correct `command` in {table}"
    if "did not start within" in error:
        return f"raise `startup_timeout_secs` in {table} or find why it hangs{log_hint}"
    if server.transport == "http":
        return f"check `url` and `headers` in {table} and that the server runs"
    return f"run the command of {table} by hand to see why it stops{log_hint}"


# --- history store -------------------------------------------------------------------------


async def check_store(config: Config, paths: Paths, env: Mapping[str, str]) -> list[Row]:
    """The store ``run`` and ``serve`` would use: files (writable?) or PostgreSQL (schema?)."""
    from openheim.store.select import store_url

    try:
        url = store_url(config.store, env)
    except ConfigError as exc:
        detail, fix = split_fix(str(exc))
        where = f"${config.store.url_env} or [store] url"
        return [Row("store", "", Status.FAIL, detail, fix or f"correct {where}")]
    if url is None:
        return [await _check_file_store(paths.history_dir)]
    source = f"${config.store.url_env}" if env.get(config.store.url_env, "").strip() else "[store]"
    return [await _check_postgres(url, source)]


async def _check_file_store(folder: Path) -> Row:
    data: dict[str, Any] = {"kind": "file", "path": str(folder)}
    try:
        count = await trio.to_thread.run_sync(_probe_folder, folder)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        detail = f"{folder} is not writable: {reason}"
        fix = f"make {folder} a folder this user can write, or set OPENHEIM_HOME elsewhere"
        return Row("store", "file", Status.FAIL, detail, fix, data=data)
    data["conversations"] = count
    detail = f"{folder} is writable ({_plural(count, 'conversation')})"
    return Row("store", "file", Status.OK, detail, data=data)


def _probe_folder(folder: Path) -> int:
    """Create the folder as a save would, write and delete a probe file, count conversations."""
    make_folders(folder, private=True)
    handle, name = tempfile.mkstemp(prefix=".doctor-", dir=folder)
    try:
        os.write(handle, b"openheim doctor probe\n")
    finally:
        os.close(handle)
        os.unlink(name)
    return sum(1 for entry in os.scandir(folder) if entry.name.endswith(".json"))


async def _check_postgres(url: str, source: str) -> Row:
    shown = strip_url_credentials(url)
    data: dict[str, Any] = {"kind": "postgresql", "url": shown}

    def row(status: Status, detail: str, fix: str | None = None) -> Row:
        return Row("store", "postgresql", status, detail, fix, data=data)

    try:
        from openheim.store.postgres import MIGRATIONS
    except ImportError as exc:
        return row(
            Status.FAIL,
            f"{shown} needs psycopg ({exc})",
            "pip install 'openheim[postgres]'",
        )
    newest = max(version for version, _ in MIGRATIONS)
    fix = f"check the URL (from {source}), that PostgreSQL runs and accepts this user"
    started = time.monotonic()
    outcome: tuple[str, int | None] | None = None
    try:
        with trio.move_on_after(STORE_TIMEOUT_SECS + 2):
            outcome = await trio.to_thread.run_sync(
                _read_postgres, url, STORE_TIMEOUT_SECS, abandon_on_cancel=True
            )
    except Exception as exc:  # psycopg.Error and friends: its first line says why
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        return row(Status.FAIL, f"{shown}: cannot connect: {reason}", fix)
    if outcome is None:
        detail = f"{shown}: no answer within {STORE_TIMEOUT_SECS + 2:g} s"
        return row(Status.FAIL, detail, fix)
    server_version, schema = outcome
    ms = round((time.monotonic() - started) * 1000)
    data.update(server_version=server_version, schema_version=schema, latency_ms=ms)
    head = f"{shown} connected in {ms} ms (PostgreSQL {server_version})"
    if schema is None:
        return row(Status.OK, f"{head}; schema not created yet (made on first use)")
    if schema > newest:
        return row(
            Status.FAIL,
            f"{head}; schema version {schema} is newer than this openheim knows ({newest})",
            "upgrade openheim to the version the other replicas run",
        )
    if schema < newest:
        return row(Status.OK, f"{head}; schema version {schema}, migrated to {newest} on start")
    return row(Status.OK, f"{head}; schema version {schema}")


def _read_postgres(url: str, timeout: float) -> tuple[str, int | None]:
    """Server version and our schema version, reading only (blocking: run in a thread)."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=max(2, int(timeout))) as conn:
        number = conn.info.server_version
        version = f"{number // 10000}.{number % 10000}"
        found = conn.execute("SELECT to_regclass('openheim_schema_migrations')").fetchone()
        if found is None or found[0] is None:
            return version, None
        newest = conn.execute("SELECT max(version) FROM openheim_schema_migrations").fetchone()
        return version, newest[0] if newest else None


# --- [server] ------------------------------------------------------------------------------


async def check_server(config: Config) -> list[Row]:
    """Only with a [server] section: the tokens ``serve`` would read, and the workspace root."""
    server = config.server
    if server == ServerConfig():
        return []
    try:
        tokens = await trio.to_thread.run_sync(read_tokens, config)
    except ConfigError as exc:
        detail, fix = split_fix(str(exc))
        return [Row("server", "", Status.FAIL, detail, fix or "correct `server.tokens_file`")]
    tenants = sorted(set(tokens.values()))
    parts = [
        f"{_plural(len(tokens), 'token')} for {_plural(len(tenants), 'tenant')}"
        if tokens
        else "no tokens: `serve` accepts loopback clients only"
    ]
    data: dict[str, Any] = {"tokens": len(tokens), "tenants": tenants}
    root = server.workspace_root
    if root is not None:
        data["workspace_root"] = str(root)
        if not await trio.Path(root).is_dir():
            return [
                Row(
                    "server",
                    "",
                    Status.FAIL,
                    f"`server.workspace_root` {root} is not a folder",
                    f"create it (mkdir -p {root}) or correct the setting",
                    data=data,
                )
            ]
        parts.append(f"workspace {root}")
    return [Row("server", "", Status.OK, "; ".join(parts), data=data)]


# --- helpers -------------------------------------------------------------------------------


def _secrets(config: Config, env: Mapping[str, str]) -> list[str]:
    """Every value that must never be shown, whichever message might echo it."""
    found: list[str] = []
    for provider in config.providers.values():
        if provider.api_key:
            found.append(provider.api_key)
        if provider.env_var and env.get(provider.env_var, "").strip():
            found.append(env[provider.env_var].strip())
    for server in config.mcp_servers.values():
        found += [*server.env.values(), *server.headers.values()]
        for value in server.headers.values():  # "Bearer abc...": the token alone too
            found.append(value.rpartition(" ")[2])
    found += list(config.server.tokens)
    for url in (config.store.url, env.get(config.store.url_env, "").strip()):
        if url:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                found += [password, unquote(password)]
    return found


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
