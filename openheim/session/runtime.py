"""What the sessions of one process share: config, store, tools and one client per provider.

Provider clients are opened on first use and live as long as the runtime, so every session on
a key shares its connection pool and its rate limiter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import trio

from openheim.concurrency import open_service_nursery
from openheim.config.model import Config, ProviderConfig
from openheim.config.paths import Paths
from openheim.config.resolve import resolve_api_key
from openheim.providers.client import ProviderClient, open_provider
from openheim.store.base import HistoryStore
from openheim.store.files import FileHistoryStore
from openheim.tools.base import Tool, ToolRegistry
from openheim.tools.builtin import builtin_tools


class Runtime:
    def __init__(
        self,
        config: Config,
        paths: Paths,
        *,
        env: Mapping[str, str],
        store: HistoryStore,
        nursery: trio.Nursery,
        extra_tools: Callable[[], list[Tool]] = list,
    ) -> None:
        self.config = config
        self.paths = paths
        self.env = env
        self.store = store
        self._nursery = nursery
        self._extra_tools = extra_tools
        self._providers: dict[str, ProviderClient] = {}
        self._opening = trio.Lock()

    def tools(self) -> ToolRegistry:
        """A fresh registry per session: sessions may add tools of their own (MCP, later)."""
        limits = self.config.tools
        registry = ToolRegistry(
            builtin_tools(
                command_timeout=limits.command_timeout_secs,
                output_limit=limits.output_limit_bytes,
                read_limit=limits.read_limit_bytes,
            )
        )
        for tool in self._extra_tools():
            registry.register(tool)
        return registry

    async def provider(self, config: ProviderConfig) -> ProviderClient:
        """The shared client for a provider; the key is checked before anything is sent."""
        async with self._opening:
            client = self._providers.get(config.name)
            if client is None:
                api_key = resolve_api_key(self.config.path, config, self.env)
                client = await self._nursery.start(self._hold_provider, config, api_key)
                self._providers[config.name] = client
            return client

    async def _hold_provider(
        self,
        config: ProviderConfig,
        api_key: str | None,
        task_status: trio.TaskStatus[ProviderClient] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with open_provider(config, api_key) as client:
            task_status.started(client)
            await trio.sleep_forever()


@asynccontextmanager
async def open_runtime(
    config: Config,
    paths: Paths,
    *,
    env: Mapping[str, str],
    store: HistoryStore | None = None,
    extra_tools: Callable[[], list[Tool]] = list,
) -> AsyncIterator[Runtime]:
    async with open_service_nursery() as nursery:
        yield Runtime(
            config,
            paths,
            env=env,
            store=store or FileHistoryStore(paths.history_dir),
            nursery=nursery,
            extra_tools=extra_tools,
        )
