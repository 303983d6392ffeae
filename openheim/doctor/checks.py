"""``run_doctor``: every check at once, each under its own deadline, rows in a fixed order.

Independent checks run in one nursery, so a dead endpoint or a hanging MCP server delays
only its own row. Each check lives in its own module and returns rows; none prints anything.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from urllib.parse import unquote, urlsplit

import trio

from openheim.config.load import load_config
from openheim.config.model import Config
from openheim.config.paths import Paths
from openheim.doctor.config_row import config_fix, config_row, permission_rows
from openheim.doctor.disk_row import check_private_files
from openheim.doctor.mcp_row import check_mcp_servers
from openheim.doctor.provider_row import PROBE_TIMEOUT_SECS, check_provider, provider_order
from openheim.doctor.rows import Report, Row, Status, scrub, split_fix
from openheim.doctor.sandbox_row import check_sandbox
from openheim.doctor.server_row import check_server
from openheim.doctor.store_row import check_store
from openheim.foundation.errors import ConfigError
from openheim.providers.client import make_dialect

log = logging.getLogger(__name__)


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
            detail, fix = config_fix(detail, config_path, exists=exists)
        return Report(config_path, [Row("config", "", Status.FAIL, detail, fix)])

    _preload(config, env)
    rows: list[Row] = [config_row(config), *permission_rows(config)]
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
        for p in provider_order(config)
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
    for provider in config.providers.values():
        make_dialect(provider)  # imports that kind's dialect module
    if any(server.enabled for server in config.mcp_servers.values()):
        from mcp.client import session, stdio  # noqa: F401 (the actors import them late)

        from openheim.mcp import supervisor  # noqa: F401
    if config.store.url or env.get(config.store.url_env, "").strip():
        with contextlib.suppress(ImportError):  # the store row itself reports a missing psycopg
            from openheim.store import postgres  # noqa: F401


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
