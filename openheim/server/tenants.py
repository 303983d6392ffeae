"""Tenants: each one's history, workspace, sessions and limits, made on first use.

A tenant is a history folder, a workspace root (sessions' ``cwd`` and the fs channel live
inside it), a ``SessionRegistry`` limited to ``max_sessions_per_tenant`` live sessions, and a
semaphore of ``max_turns_per_tenant`` turn slots. Providers (connection pools, rate limiters)
are shared by all tenants through ``Runtime.with_store``. Nothing of one tenant is reachable
from another: each has its own registry, so lookups by session id never cross.

Sessions outlive the connection that used them by ``disconnect_grace_secs``, so a client that
reconnects can ``session/load`` and go on; after the grace, a session no connection has
attached is closed (a running turn is cancelled and saved).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Protocol

import attrs
import trio

from openheim.config.model import ServerConfig
from openheim.foundation.concurrency import open_service_nursery
from openheim.foundation.fsutil import make_folders
from openheim.logs import bind_log_context
from openheim.sandbox.quota import WorkspaceQuota
from openheim.session import Runtime, SessionPolicy, SessionRegistry
from openheim.session.memory import MemoryBudget
from openheim.store.base import HistoryStore

log = logging.getLogger(__name__)


class Holder(Protocol):
    """A connection's view of the sessions it uses (the ACP dispatcher)."""

    def session_ids(self) -> list[str]: ...


@attrs.define(eq=False)
class Tenant:
    name: str
    root: Path
    runtime: Runtime
    registry: SessionRegistry
    grace: float
    _nursery: trio.Nursery
    #: Connections of this tenant that are open right now.
    holders: set[Holder] = attrs.field(factory=set)
    _expiring: dict[str, trio.CancelScope] = attrs.field(factory=dict)

    def is_held(self, session_id: str) -> bool:
        return any(session_id in holder.session_ids() for holder in self.holders)

    def release(self, session_ids: Iterable[str]) -> None:
        """A connection let go of these sessions: close each after the grace unless taken."""
        for session_id in session_ids:
            previous = self._expiring.pop(session_id, None)
            if previous is not None:
                previous.cancel()
            scope = trio.CancelScope()
            self._expiring[session_id] = scope
            self._nursery.start_soon(self._expire, session_id, scope)

    async def _expire(self, session_id: str, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(self.grace)
            if self._expiring.get(session_id) is scope:
                del self._expiring[session_id]
            if not self.is_held(session_id) and self.registry.get(session_id) is not None:
                log.info("tenant %s: closing session %s after the grace", self.name, session_id)
                self.registry.close(session_id)


class Tenants:
    """Every tenant of one server, created on first use inside this object's nursery."""

    def __init__(
        self,
        runtime: Runtime,
        settings: ServerConfig,
        workspace_root: Path,
        nursery: trio.Nursery,
        *,
        open_tenant_is_local: bool,
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self.workspace_root = workspace_root
        self._nursery = nursery
        self._local = open_tenant_is_local
        self._tenants: dict[str, Tenant] = {}
        self._creating = trio.Lock()
        #: ``[server] max_rss_mb``: one budget for the process, over every tenant's sessions.
        self.memory = MemoryBudget.from_mb(settings.max_rss_mb)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, runtime: Runtime, settings: ServerConfig, workspace_root: Path, *, local: bool
    ) -> AsyncIterator[Tenants]:
        """Tenants for the ``async with`` body; at the end their sessions close and save.

        ``local``: the server has no tokens and its one tenant uses the default history
        folder and the workspace root itself.
        """
        async with open_service_nursery() as nursery:
            yield cls(runtime, settings, workspace_root, nursery, open_tenant_is_local=local)

    def live(self) -> list[Tenant]:
        return list(self._tenants.values())

    async def get(self, name: str) -> Tenant:
        async with self._creating:
            tenant = self._tenants.get(name)
            if tenant is None:
                tenant = await self._nursery.start(self._hold, name)
                self._tenants[name] = tenant
            return tenant

    def _places(self, name: str) -> tuple[Path, HistoryStore]:
        """(workspace root, history store) of a tenant."""
        store = self._runtime.store
        if self._local:
            return self.workspace_root, store
        return self.workspace_root / name, store.for_tenant(name)

    def _quota(self, root: Path) -> WorkspaceQuota | None:
        """Tenants with tokens share the disk with strangers; the local user does not."""
        limit = self._settings.max_workspace_bytes
        return None if self._local or limit == 0 else WorkspaceQuota(root, limit)

    async def _hold(self, name: str, task_status: trio.TaskStatus[Tenant]) -> None:
        bind_log_context(replace=True, tenant=name)
        root, store = self._places(name)
        # The tenant's own files: no other local user reads them.
        await trio.to_thread.run_sync(partial(make_folders, root, private=True))
        settings = self._settings
        runtime = self._runtime.with_store(
            store,
            turn_slots=trio.Semaphore(settings.max_turns_per_tenant),
            tenant=name,
            # Without tokens the one tenant is the local user, confined like any local face.
            confined_tenant=not self._local,
            command_slots=trio.Semaphore(self._runtime.config.sandbox.max_commands_per_tenant),
            workspace=root,
            quota=self._quota(root),
            compact_at=settings.compact_at,
            memory=self.memory,
        )
        policy = SessionPolicy(max_sessions=settings.max_sessions_per_tenant, workspace=root)
        async with (
            SessionRegistry.open(runtime, policy) as registry,
            open_service_nursery() as timers,
        ):
            tenant = Tenant(name, root, runtime, registry, settings.disconnect_grace_secs, timers)
            task_status.started(tenant)
            await trio.sleep_forever()
