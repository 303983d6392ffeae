"""``openheim serve``: the REST app and the WebSocket faces on hypercorn's trio worker.

``open_server`` runs a server for the body of an ``async with`` (tests start it in-process on
port 0); ``run_server`` is the CLI command: it serves until SIGINT or SIGTERM.

Shutdown, in order: the listeners close (no new connections), every WebSocket connection
cancels its running turns, answers its prompts ``cancelled``, flushes and closes with 1001
(bounded by ``DRAIN_TIMEOUT``), hypercorn closes what is left, and last the tenants' sessions
close; every turn's history is saved, settled (each tool call answered), on the way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio
from hypercorn.config import Config as HypercornConfig

from openheim.acp.settings import AcpSettings
from openheim.config.load import read_tokens
from openheim.config.model import ClientMcpPolicy, Config
from openheim.config.paths import Paths
from openheim.foundation.errors import ConfigError, OpenheimError, SandboxError
from openheim.foundation.heap import collect_on_a_clock, settle_heap
from openheim.sandbox.factory import Sandboxing
from openheim.server.acp_http import serve_acp_http
from openheim.server.acp_http_connection import HttpConnections
from openheim.server.auth import (
    CLOSE_UNAUTHORIZED,
    Access,
    bearer_token,
    chosen_subprotocol,
    is_loopback_host,
    protocol_token,
    query_token,
    refusal,
)
from openheim.server.metrics import ServerMetrics
from openheim.server.rest import create_rest_app
from openheim.server.state import DRAIN_TIMEOUT as DRAIN_TIMEOUT  # tests and ops read it here
from openheim.server.state import ServerState
from openheim.server.tenants import Tenants
from openheim.server.worker import worker_serve
from openheim.server.worker_metrics import WorkerShare
from openheim.server.worker_role import WorkerRole
from openheim.server.ws import (
    AsgiWebSocket,
    Connection,
    ConnectionSettings,
    acp_connection_header,
)
from openheim.server.ws_frames import SEND_BATCH
from openheim.session import open_runtime

METRICS_TOKEN_ENV = "OPENHEIM_METRICS_TOKEN"

log = logging.getLogger(__name__)

DEFAULT_PORT = 1217
#: WebSocket messages hypercorn queues for the app per connection (each up to a frame).
APP_QUEUE = 4


class OpenheimApp:
    """The ASGI app: WebSockets and ``/acp`` here, everything else to the REST app."""

    def __init__(self, state: ServerState, rest: Any) -> None:
        self.state = state
        self.rest = rest

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            batches = SEND_BATCH in (scope.get("extensions") or {})
            socket = AsgiWebSocket(receive, send, batches=batches)
            await serve_websocket(self.state, scope, socket)
        elif scope["type"] == "http" and scope["path"] == "/acp":
            await serve_acp_http(self.state, scope, receive, send)
        else:
            await self.rest(scope, receive, send)


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def serve_websocket(state: ServerState, scope: Mapping[str, Any], ws: AsgiWebSocket) -> None:
    if not await ws.wait_connect():
        return
    path = scope["path"]
    if path not in ("/ws", "/acp"):
        await ws.reject(404, {"error": "not found", "code": "not_found"})
        return
    headers = _headers(scope)
    why = refusal(state.access, origin=headers.get("origin"), host=headers.get("host"))
    if why is not None:
        await ws.reject(403, {"error": why, "code": "forbidden"})
        return
    if state.closing:
        await ws.reject(503, {"error": "the server is shutting down", "code": "shutting_down"})
        return
    offered = list(scope.get("subprotocols") or ())
    token = (
        bearer_token(headers.get("authorization"))
        or protocol_token(offered)
        or query_token(scope["query_string"])
    )
    tenant_name = state.access.tenant_for(token)
    await ws.accept(
        [acp_connection_header()] if path == "/acp" else [],
        subprotocol=chosen_subprotocol(offered),
    )
    if tenant_name is None:
        await ws.close(CLOSE_UNAUTHORIZED, "unauthorized: pass a valid token")
        return
    tenant = await state.tenants.get(tenant_name)
    connection = Connection(ws, tenant, state.connection_settings, multiplexed=path == "/ws")
    state.connections.add(connection)
    try:
        await connection.run()
    finally:
        state.connections.discard(connection)


def check_bind(host: str, access: Access, config: Config) -> None:
    """Without tokens anyone who reaches the port could run commands: loopback only."""
    if access.open and not is_loopback_host(host):
        raise ConfigError(
            f"refusing to serve on {host} without tokens (anyone who can reach it could run "
            f"commands as you): add [server] tokens or tokens_file to {config.path}, "
            "or bind --host 127.0.0.1"
        )


def hypercorn_config(
    host: str, port: int, config: Config, worker: WorkerRole | None = None
) -> HypercornConfig:
    """Hypercorn's settings; a worker of ``serve --workers`` serves the socket it was handed."""
    settings = HypercornConfig()
    if worker is not None:
        settings.bind = [worker.bind]
    else:
        settings.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    settings.accesslog = None
    settings.errorlog = logging.getLogger("openheim.server.http")
    settings.graceful_timeout = 2.0
    settings.include_server_header = False
    settings.websocket_max_message_size = config.server.max_frame_bytes
    settings.max_app_queue_size = APP_QUEUE
    return settings


def check_sandbox(sandboxing: Sandboxing, config: Config, *, tenants: bool) -> None:
    """With tenant tokens, tools run only in a sandbox, unless the operator accepted the risk.

    A missing backend is a refusal to start, never a silent downgrade."""
    if not tenants or sandboxing.confines or config.sandbox.allow_unsandboxed_tenants:
        return
    notes = "; ".join(sandboxing.choice.notes) or f"[sandbox] mode is {sandboxing.choice.mode}"
    raise SandboxError(
        f"serve has tenant tokens but no sandbox confines their tools ({notes}); fix: install "
        "bubblewrap (apt-get install bubblewrap) and allow user namespaces, or accept the risk "
        f'with [sandbox] mode = "none" and allow_unsandboxed_tenants = true in {config.path}'
    )


@attrs.frozen
class RunningServer:
    url: str
    state: ServerState

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


@asynccontextmanager
async def open_server(
    config: Config,
    paths: Paths,
    *,
    env: Mapping[str, str],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    workspace_root: Path | None = None,
    store_url: str | None = None,
    worker: WorkerRole | None = None,
) -> AsyncIterator[RunningServer]:
    """Serve for the body of the ``async with``; raises ``OpenheimError`` before binding when
    the config does not allow it, and when the address cannot be bound."""
    server = config.server
    access = Access(read_tokens(config), frozenset(server.allowed_origins))
    check_bind(host, access, config)
    chosen = workspace_root or server.workspace_root or Path.cwd()
    root = await trio.Path(chosen).resolve()
    if not await root.is_dir():
        raise ConfigError(f"{config.path}: `server.workspace_root` {root} is not a folder")
    client_mcp = server.client_mcp_servers or (
        ClientMcpPolicy.ALL if access.open else ClientMcpPolicy.NONE
    )
    settings = ConnectionSettings(
        acp=attrs.evolve(AcpSettings.from_env(env), client_mcp_servers=client_mcp),
        slow_client_timeout=server.slow_client_timeout_secs,
        on_disconnect=server.on_disconnect,
    )
    stop = trio.Event()
    failure: BaseException | None = None
    metrics = ServerMetrics()
    async with (
        open_runtime(config, paths, env=env, store_url=store_url, observer=metrics) as runtime,
        Tenants.open(runtime, server, Path(root), local=access.open) as tenants,
        HttpConnections.open() as acp_http,
    ):
        check_sandbox(runtime.sandboxing, config, tenants=not access.open)
        state = ServerState(
            config,
            access,
            tenants,
            settings,
            metrics=metrics,
            metrics_token=server.metrics_token or env.get(METRICS_TOKEN_ENV) or None,
            mcp=runtime.mcp,
            sandbox=runtime.sandboxing.describe(tenants=not access.open),
            worker=worker.index if worker is not None else None,
            metrics_share=worker.share if worker is not None else None,
            acp_http=acp_http,
        )
        metrics.watch(state)
        app = OpenheimApp(state, create_rest_app(state))
        serve = partial(
            worker_serve,
            app,
            hypercorn_config(host, port, config, worker),
            stall_timeout=server.slow_client_timeout_secs,
            shutdown_trigger=stop.wait,
            drain=state.drain,
        )
        async with trio.open_nursery() as nursery:
            try:
                binds: list[str] = await nursery.start(serve)
            except OSError as exc:
                message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                raise OpenheimError(message) from None
            sharing = trio.CancelScope()
            if state.metrics_share is not None:
                nursery.start_soon(_share_metrics, sharing, state.metrics_share, metrics)
            try:
                yield RunningServer(binds[0], state)
            except BaseException as exc:  # leaves as itself, not in the nursery's group
                failure = exc
            finally:
                sharing.cancel()
                stop.set()
    if failure is not None:
        raise failure


async def _share_metrics(
    scope: trio.CancelScope, share: WorkerShare, metrics: ServerMetrics
) -> None:
    """Keep this worker's metrics where its peers read them, until the server stops."""
    with scope:
        await share.keep_shared(metrics.render)


async def run_server(
    host: str,
    port: int,
    env: Mapping[str, str],
    *,
    store_url: str | None = None,
    log_format: str | None = None,
    worker: WorkerRole | None = None,
) -> int:
    """The ``openheim serve`` command: serve until SIGINT or SIGTERM, then shut down cleanly;
    as a ``worker`` of ``serve --workers``, on the socket the parent handed over."""
    import signal

    from openheim.config.load import load_config
    from openheim.config.secrets import config_secrets
    from openheim.logs import announce, configure_logging

    configure_logging(env, fmt=log_format)
    paths = Paths.from_env(env)
    config = load_config(paths.config_file)
    fmt = configure_logging(env, fmt=log_format, secrets=config_secrets(config, env))
    if worker is not None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the parent's signal: it restarts us
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_server(
            config, paths, env=env, host=host, port=port, store_url=store_url, worker=worker
        ) as server:
            sandbox = server.state.sandbox or {}
            settle_heap()
            if worker is not None:  # the parent announces the server, once
                log.info("worker %d serving (sandbox: %s)", worker.index, sandbox.get("summary"))
                worker.announce_ready()
            else:
                announce(fmt, f"openheim serving on {server.url}", url=server.url)
                backend = str(sandbox.get("backend"))
                announce(fmt, f"tools sandboxed by {sandbox.get('summary')}", sandbox=backend)
            async with trio.open_nursery() as housekeeping:
                housekeeping.start_soon(collect_on_a_clock)
                if worker is not None:
                    housekeeping.start_soon(worker.die_with_parent)
                async for signum in signals:
                    log.warning("%s: shutting down", signal.Signals(signum).name)
                    break
                housekeeping.cancel_scope.cancel()
    return 0
