"""History in PostgreSQL, for fleets of identical replicas sharing one database.

psycopg 3's async API runs on asyncio only, so the sync API runs in ``trio.to_thread`` workers
over a ``psycopg_pool.ConnectionPool``: each call borrows a connection for one short
transaction. A conversation is one row (the same JSON document the file store writes), so a
save is atomic by the transaction and a reader sees the old or the new version, never a mix.
Rows are keyed by (tenant, id): tenants of one server share the table, never each other's rows.

Schema changes are numbered migrations applied at start under an advisory lock, so replicas
starting together apply each one exactly once.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import psycopg
import psycopg_pool
import trio

from openheim.foundation.errors import ConversationNotFoundError, HistoryError
from openheim.foundation.models import Conversation
from openheim.store import codec
from openheim.store.base import ConversationMeta
from openheim.store.files import normalise_id
from openheim.store.lease import Lease, Owner
from openheim.store.postgres_lease import (
    HEARTBEAT_MIGRATION,
    LEASE_MIGRATION,
    PostgresLease,
    acquire,
    create,
    renew,
)

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

T = TypeVar("T")

#: (version, SQL). Append only: a released migration is never edited.
MIGRATIONS: Sequence[tuple[int, str]] = (
    (
        1,
        """
        CREATE TABLE openheim_conversations (
            tenant      text        NOT NULL,
            id          uuid        NOT NULL,
            created_at  timestamptz NOT NULL,
            updated_at  timestamptz NOT NULL,
            meta        jsonb       NOT NULL,
            document    jsonb       NOT NULL,
            PRIMARY KEY (tenant, id)
        );
        CREATE INDEX openheim_conversations_recent
            ON openheim_conversations (tenant, updated_at DESC);
        """,
    ),
    (2, LEASE_MIGRATION),
    (3, HEARTBEAT_MIGRATION),
)
#: Any constant that both replicas agree on; it names the lock migrations take.
_MIGRATION_LOCK = 0x6F70656E6865696D  # "openheim"
DEFAULT_TENANT = "default"


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:<redacted>@", url)


class PostgresHistoryStore:
    """One tenant's view of the shared table; ``for_tenant`` gives another's."""

    def __init__(
        self,
        pool: ConnectionPool,
        url: str,
        tenant: str = DEFAULT_TENANT,
        *,
        owner: Owner | None = None,
    ) -> None:
        self._pool = pool
        self._url = url
        self.tenant = tenant
        self.owner = owner or Owner.new()

    def for_tenant(self, name: str) -> PostgresHistoryStore:
        return PostgresHistoryStore(self._pool, self._url, name, owner=self.owner)

    def with_owner(self, owner: Owner) -> PostgresHistoryStore:
        """The same tenant as seen by another owner (another replica, in tests)."""
        return PostgresHistoryStore(self._pool, self._url, self.tenant, owner=owner)

    def __repr__(self) -> str:
        return f"PostgresHistoryStore({redact_url(self._url)!r}, tenant={self.tenant!r})"

    async def acquire(self, conversation_id: str) -> PostgresLease:
        return await acquire(self, normalise_id(conversation_id), self.owner)

    async def create(self, conversation: Conversation) -> PostgresLease:
        return await create(self, normalise_id(conversation.id), conversation, self.owner)

    async def renew(self, leases: Collection[Lease], *, check: bool = False) -> None:
        await renew(self, leases, self.owner, check=check)

    async def save(self, conversation: Conversation) -> None:
        """Unowned: no lease is checked (tools, tests); the version still moves, so an owner
        that saves next finds out."""
        # Serialise in the caller's task: the conversation may change once we yield.
        key = normalise_id(conversation.id)
        document = codec.to_document(conversation)
        meta = document["meta"]
        row = (
            self.tenant,
            key,
            conversation.created_at,
            conversation.updated_at,
            json.dumps(meta, ensure_ascii=False),
            json.dumps(document, ensure_ascii=False),
        )

        def write(connection: Connection[Any]) -> None:
            connection.execute(
                """
                INSERT INTO openheim_conversations
                    (tenant, id, created_at, updated_at, meta, document)
                VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb)
                ON CONFLICT (tenant, id) DO UPDATE SET
                    updated_at = EXCLUDED.updated_at,
                    meta = EXCLUDED.meta,
                    document = EXCLUDED.document,
                    version = openheim_conversations.version + 1
                """,
                row,
            )

        await self.run(write, f"save conversation {conversation.id}")

    async def load(self, conversation_id: str) -> Conversation:
        key = normalise_id(conversation_id)

        def read(connection: Connection[Any]) -> Any:
            found = connection.execute(
                "SELECT document FROM openheim_conversations WHERE tenant = %s AND id = %s",
                (self.tenant, key),
            ).fetchone()
            return None if found is None else found[0]

        document = await self.run(read, f"load conversation {key}")
        if document is None:
            raise ConversationNotFoundError(f"no conversation {key} in the history database")
        try:
            return codec.from_document(document)
        except Exception as exc:  # cattrs reports shape errors as exception groups
            raise HistoryError(f"conversation {key} in the database is not valid: {exc}") from None

    async def list(self, limit: int | None = None) -> list[ConversationMeta]:
        def read(connection: Connection[Any]) -> list[Any]:
            return connection.execute(
                """
                SELECT meta FROM openheim_conversations WHERE tenant = %s
                ORDER BY updated_at DESC, id LIMIT %s
                """,
                (self.tenant, limit),
            ).fetchall()

        metas = []
        for (meta,) in await self.run(read, "list conversations"):
            try:
                metas.append(codec.meta_from_document({"meta": meta}))
            except Exception as exc:  # one bad row must not hide the others
                log.warning("skipping an unreadable conversation row: %s", exc)
        return metas

    async def delete(self, conversation_id: str) -> None:
        key = normalise_id(conversation_id)

        def remove(connection: Connection[Any]) -> int:
            return connection.execute(
                "DELETE FROM openheim_conversations WHERE tenant = %s AND id = %s",
                (self.tenant, key),
            ).rowcount

        if await self.run(remove, f"delete conversation {key}") == 0:
            raise ConversationNotFoundError(f"no conversation {key} in the history database")

    async def run(self, operation: Callable[[Connection[Any]], T], what: str) -> T:
        """``operation`` on a pooled connection in a worker thread; failures as ``HistoryError``
        saying ``what`` could not be done."""

        def in_thread() -> T:
            with self._pool.connection() as connection:
                return operation(connection)

        try:
            return await trio.to_thread.run_sync(in_thread)
        except psycopg.Error as exc:
            raise HistoryError(f"could not {what}: {_reason(exc)}") from None
        except psycopg_pool.PoolTimeout as exc:
            raise HistoryError(
                f"could not {what}: {exc} ({redact_url(self._url)})",
                public=f"could not {what}: the history database failed (the server log says why)",
            ) from None


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def migrate(connection: Connection[Any]) -> list[int]:
    """Apply the migrations this database lacks; returns the versions applied."""
    applied: list[int] = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        connection.execute(
            """
            CREATE TABLE IF NOT EXISTS openheim_schema_migrations (
                version    integer     PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = connection.execute("SELECT version FROM openheim_schema_migrations").fetchall()
        done = {version for (version,) in rows}
        newest = max((version for version, _ in MIGRATIONS), default=0)
        if done and max(done) > newest:
            raise HistoryError(
                f"the history database has schema version {max(done)}, newer than this "
                f"openheim knows ({newest}); upgrade openheim"
            )
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            connection.execute(sql)  # type: ignore[arg-type]  # our own constant SQL
            connection.execute(
                "INSERT INTO openheim_schema_migrations (version) VALUES (%s)", (version,)
            )
            applied.append(version)
    return applied


@attrs.frozen
class SchemaVersion:
    """What ``schema_version`` read: the server's version and the newest migration applied
    (None before the first); ``newest`` is the newest this openheim knows."""

    server: str
    applied: int | None
    newest: int = max(version for version, _ in MIGRATIONS)


def schema_version(url: str, *, timeout: float) -> SchemaVersion:
    """Read the schema version without changing anything (``migrate`` is for ``run`` and
    ``serve``; ``openheim doctor`` only looks). Blocking: call it in a worker thread."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=max(2, int(timeout))) as conn:
            number = conn.info.server_version
            server = f"{number // 10000}.{number % 10000}"
            found = conn.execute("SELECT to_regclass('openheim_schema_migrations')").fetchone()
            if found is None or found[0] is None:
                return SchemaVersion(server, None)
            newest = conn.execute("SELECT max(version) FROM openheim_schema_migrations").fetchone()
    except psycopg.Error as exc:
        raise HistoryError(f"cannot connect: {_reason(exc)}") from None
    return SchemaVersion(server, newest[0] if newest else None)


def open_pool(url: str, *, max_size: int = 10, timeout: float = 10.0) -> ConnectionPool:
    """A pool whose first connection is made (and the schema migrated) before it returns.

    Blocking: call it in a worker thread.
    """

    def configure(connection: Connection[Any]) -> None:
        connection.autocommit = True  # each statement is its own transaction unless we say

    # One direct connection first: it fails fast with the server's own reason (the pool
    # would retry until its timeout), and migrates before any session can use the table.
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout))) as first:
            applied = migrate(first)
    except psycopg.Error as exc:
        raise HistoryError(
            f"cannot use the history database {redact_url(url)}: {_reason(exc)}; check the "
            "URL, that PostgreSQL runs and accepts this user"
        ) from None
    pool: ConnectionPool = psycopg_pool.ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        timeout=timeout,
        configure=configure,
        open=False,
        name="openheim-history",
    )
    try:
        pool.open(wait=True, timeout=timeout)
    except psycopg_pool.PoolTimeout as exc:
        pool.close()
        raise HistoryError(f"cannot reach the history database {redact_url(url)}: {exc}") from None
    if applied:
        log.info("history database migrated to schema version %d", applied[-1])
    return pool
