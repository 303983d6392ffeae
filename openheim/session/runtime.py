"""What the sessions of one process share: config, store, tools and one client per provider.

Provider clients are opened on first use and live as long as the runtime, so every session on
a key shares its connection pool and its rate limiter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from openheim.config.model import Config, ProviderConfig
from openheim.config.paths import Paths
from openheim.config.resolve import resolve_api_key
from openheim.foundation.concurrency import open_service_nursery
from openheim.observe import NULL_OBSERVER, Observer
from openheim.providers.client import ProviderClient, open_provider
from openheim.sandbox.factory import Sandboxing, open_sandboxing
from openheim.sandbox.quota import WorkspaceQuota
from openheim.sandbox.sandbox import Sandbox
from openheim.store.base import HistoryStore
from openheim.store.lease import Owner
from openheim.store.select import open_history_store
from openheim.tools.base import Tool, ToolRegistry
from openheim.tools.builtin import builtin_tools
from openheim.tracing import with_tracing

if TYPE_CHECKING:
    from openheim.mcp.supervisor import McpSupervisor
    from openheim.session.memory import MemoryBudget


class ProviderPool:
    """One client per provider, opened on first use, shared by every session and tenant."""

    def __init__(
        self,
        config: Config,
        env: Mapping[str, str],
        nursery: trio.Nursery,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self._config = config
        self._env = env
        self._nursery = nursery
        self._observer = observer
        self._clients: dict[str, ProviderClient] = {}
        self._opening = trio.Lock()

    async def get(self, config: ProviderConfig) -> ProviderClient:
        """The shared client for a provider; the key is checked before anything is sent."""
        async with self._opening:
            client = self._clients.get(config.name)
            if client is None:
                api_key = resolve_api_key(self._config.path, config, self._env)
                client = await self._nursery.start(self._hold, config, api_key)
                self._clients[config.name] = client
            return client

    async def _hold(
        self,
        config: ProviderConfig,
        api_key: str | None,
        task_status: trio.TaskStatus[ProviderClient] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with open_provider(config, api_key, self._observer) as client:
            task_status.started(client)
            await trio.sleep_forever()


class Runtime:
    def __init__(
        self,
        config: Config,
        paths: Paths,
        *,
        env: Mapping[str, str],
        store: HistoryStore,
        providers: ProviderPool,
        sandboxing: Sandboxing,
        extra_tools: Callable[[], list[Tool]] = list,
        turn_slots: trio.Semaphore | None = None,
        mcp: McpSupervisor | None = None,
        observer: Observer = NULL_OBSERVER,
        tenant: str = "default",
        confined_tenant: bool = False,
        command_slots: trio.Semaphore | None = None,
        workspace: Path | None = None,
        quota: WorkspaceQuota | None = None,
        compact_at: float | None = None,
        memory: MemoryBudget | None = None,
    ) -> None:
        self.config = config
        #: The server's memory budget, shared by every tenant (None: no budget).
        self.memory = memory
        #: A server tenant's compaction threshold (``[server] compact_at``), over the
        #: providers'; None: each provider's own.
        self.compact_at = compact_at
        self.paths = paths
        self.env = env
        self.store = store
        self.providers = providers
        #: When set, a turn holds one of these while it runs: the cap on concurrent turns of
        #: every session on this runtime (a server tenant's limit).
        self.turn_slots = turn_slots
        self._extra_tools = extra_tools
        #: The MCP servers' actors; None when the config names none (``mcp`` stays unimported).
        self.mcp = mcp
        self.observer = observer
        #: Whose sessions these are, for metrics (a server tenant's name).
        self.tenant = tenant
        #: The backend chosen at start; each session gets its own policy from it.
        self.sandboxing = sandboxing
        #: A server tenant: its sessions' tools get the strict tenant policy.
        self.confined_tenant = confined_tenant
        #: When set, a command holds one while it runs (a server tenant's cap).
        self.command_slots = command_slots
        #: A server tenant's whole workspace: its sessions' tools may write all of it.
        self.workspace = workspace
        #: A server tenant's workspace quota, shared by its sessions and its fs channel.
        self.quota = quota

    def with_store(
        self,
        store: HistoryStore,
        *,
        turn_slots: trio.Semaphore | None = None,
        tenant: str | None = None,
        confined_tenant: bool = False,
        command_slots: trio.Semaphore | None = None,
        workspace: Path | None = None,
        quota: WorkspaceQuota | None = None,
        compact_at: float | None = None,
        memory: MemoryBudget | None = None,
    ) -> Runtime:
        """The same runtime over another history (a tenant's): providers stay shared, and
        so does the memory budget (``memory`` gives one where this runtime has none)."""
        return Runtime(
            self.config,
            self.paths,
            env=self.env,
            store=store,
            providers=self.providers,
            sandboxing=self.sandboxing,
            extra_tools=self._extra_tools,
            turn_slots=turn_slots,
            mcp=self.mcp,
            observer=self.observer,
            tenant=tenant or self.tenant,
            confined_tenant=confined_tenant,
            command_slots=command_slots,
            workspace=workspace,
            quota=quota,
            compact_at=compact_at,
            memory=memory or self.memory,
        )

    def tools(self) -> ToolRegistry:
        """A fresh registry per session; MCP tools are live in it, there once connected."""
        limits = self.config.tools
        registry = ToolRegistry(
            builtin_tools(
                command_timeout=limits.command_timeout_secs,
                output_limit=limits.output_limit_bytes,
                read_limit=limits.read_limit_bytes,
                web_fetch=self._may_fetch(),
            ),
            live=self.mcp,
        )
        for tool in self._extra_tools():
            registry.register(tool)
        return registry

    def _may_fetch(self) -> bool:
        """``web_fetch`` is openheim reaching the network itself: never without the network,
        and for a server tenant only when ``[server] allow_web_fetch`` says so."""
        if not self.config.sandbox.network:
            return False
        return not self.confined_tenant or self.config.server.allow_web_fetch

    def sandbox(self, roots: Sequence[Path]) -> Sandbox:
        """The sandbox of a session working in ``roots`` (its cwd first); a tenant's sessions
        reach its whole workspace, wherever in it they work."""
        if self.workspace is not None:
            roots = (self.workspace, *roots)
        return self.sandboxing.for_session(
            roots, tenant=self.confined_tenant, slots=self.command_slots, quota=self.quota
        )


@asynccontextmanager
async def open_runtime(
    config: Config,
    paths: Paths,
    *,
    env: Mapping[str, str],
    store: HistoryStore | None = None,
    store_url: str | None = None,
    extra_tools: Callable[[], list[Tool]] = list,
    observer: Observer = NULL_OBSERVER,
) -> AsyncIterator[Runtime]:
    """``store`` given is used as is; otherwise ``store_url`` (``--store``), the environment or
    ``[store]`` choose one (see ``openheim.store.select``)."""
    observer = with_tracing(observer, env)
    sandboxing = await open_sandboxing(config, paths, env, store_url=store_url)
    async with AsyncExitStack() as stack:
        if store is None:
            store = await stack.enter_async_context(
                open_history_store(
                    config.store,
                    paths,
                    env=env,
                    override=store_url,
                    owner=Owner.new(config.server.replica_name, config.server.session_lease_secs),
                )
            )
        mcp = None
        if any(server.enabled for server in config.mcp_servers.values()):
            # Imported only here: a run without MCP servers never loads the SDK.
            from openheim.mcp.supervisor import open_mcp_supervisor

            supervisor = open_mcp_supervisor(
                config.mcp_servers.values(),
                log_dir=paths.logs_dir,
                output_limit=config.tools.output_limit_bytes,
            )
            mcp = await stack.enter_async_context(supervisor)
        nursery = await stack.enter_async_context(open_service_nursery())
        yield Runtime(
            config,
            paths,
            env=env,
            store=store,
            providers=ProviderPool(config, env, nursery, observer),
            sandboxing=sandboxing,
            extra_tools=extra_tools,
            mcp=mcp,
            observer=observer,
        )
