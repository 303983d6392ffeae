"""Leases in PostgreSQL: a row per owned conversation, with an expiry the owner renews.

Times are the database's (``now()``), so replicas' clocks never have to agree. A save is one
statement that writes only while this owner holds the lease row (locked ``FOR SHARE``, so a
takeover waits for a save in flight) and the stored version is the one this owner last saw;
it bumps the version. A replica that takes over after the lease ran out thus fences the old
owner: its next save or renewal finds another owner and fails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from openheim.foundation.errors import ConversationNotFoundError, HistoryError
from openheim.foundation.models import Conversation
from openheim.store import codec
from openheim.store.lease import Lease, LeaseState, Owner, SessionActiveElsewhereError

if TYPE_CHECKING:
    from psycopg import Connection

    from openheim.store.postgres import PostgresHistoryStore

#: Appended to ``postgres.MIGRATIONS`` as version 2.
LEASE_MIGRATION = """
    ALTER TABLE openheim_conversations ADD COLUMN version bigint NOT NULL DEFAULT 0;
    CREATE TABLE openheim_leases (
        tenant      text        NOT NULL,
        id          uuid        NOT NULL,
        owner       text        NOT NULL,
        expires_at  timestamptz NOT NULL,
        PRIMARY KEY (tenant, id)
    );
"""

_TAKE = """
    INSERT INTO openheim_leases AS lease (tenant, id, owner, expires_at)
    VALUES (%(tenant)s, %(id)s, %(owner)s, now() + make_interval(secs => %(secs)s))
    ON CONFLICT (tenant, id) DO UPDATE
        SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
        WHERE lease.owner = EXCLUDED.owner OR lease.expires_at <= now()
    RETURNING owner
"""
_HOLDER = """
    SELECT owner, greatest(0, extract(epoch FROM expires_at - now()))::float8
    FROM openheim_leases WHERE tenant = %(tenant)s AND id = %(id)s
"""
_RENEW = """
    UPDATE openheim_leases SET expires_at = now() + make_interval(secs => %(secs)s)
    WHERE tenant = %(tenant)s AND owner = %(owner)s
    RETURNING id
"""
_RELEASE = """
    DELETE FROM openheim_leases WHERE tenant = %(tenant)s AND id = %(id)s AND owner = %(owner)s
"""
_LOAD = """
    SELECT document, version FROM openheim_conversations WHERE tenant = %(tenant)s AND id = %(id)s
"""
_SAVE = """
    WITH held AS (
        SELECT 1 FROM openheim_leases
        WHERE tenant = %(tenant)s AND id = %(id)s AND owner = %(owner)s
        FOR SHARE
    )
    INSERT INTO openheim_conversations AS stored
        (tenant, id, created_at, updated_at, meta, document, version)
    SELECT %(tenant)s::text, %(id)s::uuid, %(created_at)s::timestamptz,
        %(updated_at)s::timestamptz, %(meta)s::jsonb, %(document)s::jsonb, %(expected)s::bigint + 1
    WHERE EXISTS (SELECT 1 FROM held)
    ON CONFLICT (tenant, id) DO UPDATE SET
        updated_at = EXCLUDED.updated_at,
        meta = EXCLUDED.meta,
        document = EXCLUDED.document,
        version = stored.version + 1
    WHERE stored.version = %(expected)s::bigint AND EXISTS (SELECT 1 FROM held)
    RETURNING version
"""


async def renew(store: PostgresHistoryStore, leases: Sequence[Lease], owner: Owner) -> None:
    """One statement extends every lease of this owner and tenant; a lease of ``leases`` it
    did not find was taken by another replica after it ran out."""
    params = {"tenant": store.tenant, "owner": owner.id, "secs": owner.lease_secs}

    def extend(connection: Connection[Any]) -> set[str]:
        return {str(row[0]) for row in connection.execute(_RENEW, params).fetchall()}

    held = await store.run(extend, "renew the session leases")
    for lease in leases:
        if lease.state.conversation_id not in held and not lease.state.released:
            lease.state.fence("another server took its lease after it ran out")


async def acquire(store: PostgresHistoryStore, key: str, owner: Owner) -> PostgresLease:
    """Take the lease of conversation ``key`` (normalised), or say for how long it is held."""
    params = {"tenant": store.tenant, "id": key, "owner": owner.id, "secs": owner.lease_secs}

    def take(connection: Connection[Any]) -> tuple[str, float] | None:
        for _ in range(3):  # the holder may release between the two statements
            if connection.execute(_TAKE, params).fetchone() is not None:
                return None
            holder = connection.execute(_HOLDER, params).fetchone()
            if holder is not None:
                return str(holder[0]), float(holder[1])
        return None  # pragma: no cover - three releases in a row

    held = await store.run(take, f"take the lease of conversation {key}")
    if held is not None:
        raise SessionActiveElsewhereError(key, held[1], held[0])
    return PostgresLease(store, LeaseState(key, owner))


class PostgresLease:
    def __init__(self, store: PostgresHistoryStore, state: LeaseState) -> None:
        self._store = store
        self.state = state

    def _params(self) -> dict[str, Any]:
        state = self.state
        return {
            "tenant": self._store.tenant,
            "id": state.conversation_id,
            "owner": state.owner.id,
            "secs": state.owner.lease_secs,
        }

    async def load(self) -> Conversation:
        key = self.state.conversation_id

        def read(connection: Connection[Any]) -> tuple[Any, int] | None:
            found = connection.execute(_LOAD, self._params()).fetchone()
            return None if found is None else (found[0], int(found[1]))

        found = await self._store.run(read, f"load conversation {key}")
        if found is None:
            raise ConversationNotFoundError(f"no conversation {key} in the history database")
        document, self.state.version = found
        try:
            return codec.from_document(document)
        except Exception as exc:  # cattrs reports shape errors as exception groups
            raise HistoryError(f"conversation {key} in the database is not valid: {exc}") from None

    async def save(self, conversation: Conversation) -> None:
        # Serialise in the caller's task: the conversation may change once we yield.
        document = codec.to_document(conversation)
        state = self.state
        params = {
            **self._params(),
            "created_at": conversation.created_at,
            "updated_at": conversation.updated_at,
            "meta": json.dumps(document["meta"], ensure_ascii=False),
            "document": json.dumps(document, ensure_ascii=False),
            "expected": state.version,
        }
        if state.lost or state.released:
            raise state.fence(state.reason or "its lease was released")

        def write(connection: Connection[Any]) -> int | None:
            found = connection.execute(_SAVE, params).fetchone()
            return None if found is None else int(found[0])

        written = await self._store.run(write, f"save conversation {state.conversation_id}")
        if written is None:
            raise state.fence("another server holds it or saved it since")
        state.version = written

    async def release(self) -> None:
        self.state.released = True

        def remove(connection: Connection[Any]) -> None:
            connection.execute(_RELEASE, self._params())

        await self._store.run(remove, f"release conversation {self.state.conversation_id}")
