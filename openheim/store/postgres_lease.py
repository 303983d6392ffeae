"""Leases in PostgreSQL: a row per owned conversation, kept alive by its owner's heartbeat.

A lease row names its owner. The owner (a process) renews one heartbeat row for all of its
leases, so renewal costs one row however many sessions it holds; a lease row also carries the
expiry it was taken with, so it holds for one lease period even before the first heartbeat
(and leases written by an openheim from before heartbeats, which renews that expiry, are
honoured). A lease may be taken over once both have run out.

Times are the database's (``now()``), so replicas' clocks never have to agree. A save is one
statement that writes only while this owner holds the lease row (locked ``FOR SHARE``, so a
takeover waits for a save in flight) and the stored version is the one this owner last saw;
it bumps the version. A replica that takes over after the lease ran out thus fences the old
owner: its next save fails. The old owner also looks for its lost leases when it renews after
its heartbeat ran out, and drops those sessions early.
"""

from __future__ import annotations

import json
from collections.abc import Collection
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
#: Version 3: one heartbeat per owner instead of renewing every lease row.
HEARTBEAT_MIGRATION = """
    CREATE TABLE openheim_owners (
        owner       text        PRIMARY KEY,
        expires_at  timestamptz NOT NULL
    );
    CREATE INDEX openheim_leases_by_owner ON openheim_leases (tenant, owner);
"""

#: The lease row ``lease`` is still held: by its own expiry, or by its owner's heartbeat.
_STILL_HELD = """
    (lease.expires_at > now() OR EXISTS (
        SELECT 1 FROM openheim_owners beat
        WHERE beat.owner = lease.owner AND beat.expires_at > now()))
"""
_TAKE = f"""
    INSERT INTO openheim_leases AS lease (tenant, id, owner, expires_at)
    VALUES (%(tenant)s, %(id)s, %(owner)s, now() + make_interval(secs => %(secs)s))
    ON CONFLICT (tenant, id) DO UPDATE
        SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
        WHERE lease.owner = EXCLUDED.owner OR NOT {_STILL_HELD}
    RETURNING owner
"""
_HOLDER = """
    SELECT lease.owner, greatest(0, extract(epoch FROM
        greatest(lease.expires_at, beat.expires_at) - now()))::float8
    FROM openheim_leases lease
    LEFT JOIN openheim_owners beat ON beat.owner = lease.owner
    WHERE lease.tenant = %(tenant)s AND lease.id = %(id)s
"""
#: Renews the heartbeat; answers whether it was still running (false: it ran out, or this
#: owner never beat before), as every sub-statement sees the rows from before the statement.
_BEAT = """
    WITH before AS (
        SELECT expires_at > now() AS alive FROM openheim_owners WHERE owner = %(owner)s
    ),
    beat AS (
        INSERT INTO openheim_owners (owner, expires_at)
        VALUES (%(owner)s, now() + make_interval(secs => %(secs)s))
        ON CONFLICT (owner) DO UPDATE SET expires_at = EXCLUDED.expires_at
        RETURNING 1
    )
    SELECT coalesce((SELECT alive FROM before), false) FROM beat
"""
_MINE = """
    SELECT id FROM openheim_leases WHERE tenant = %(tenant)s AND owner = %(owner)s
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

_CREATE = """
    WITH taken AS (
        INSERT INTO openheim_leases (tenant, id, owner, expires_at)
        VALUES (%(tenant)s, %(id)s, %(owner)s, now() + make_interval(secs => %(secs)s))
        ON CONFLICT (tenant, id) DO NOTHING
        RETURNING 1
    )
    INSERT INTO openheim_conversations (tenant, id, created_at, updated_at, meta, document, version)
    SELECT %(tenant)s::text, %(id)s::uuid, %(created_at)s::timestamptz,
        %(updated_at)s::timestamptz, %(meta)s::jsonb, %(document)s::jsonb, 1
    WHERE EXISTS (SELECT 1 FROM taken)
    RETURNING version
"""


async def renew(
    store: PostgresHistoryStore, leases: Collection[Lease], owner: Owner, *, check: bool
) -> None:
    """Beat once for every lease of this owner. If the heartbeat had run out (or ``check``:
    this process went a whole lease without renewing), another replica may have taken some
    leases meanwhile: those of ``leases`` no longer this owner's are fenced."""
    params = {"tenant": store.tenant, "owner": owner.id, "secs": owner.lease_secs}

    def beat(connection: Connection[Any]) -> set[str] | None:
        row = connection.execute(_BEAT, params).fetchone()
        if row is not None and row[0] and not check:
            return None
        return {str(found[0]) for found in connection.execute(_MINE, params)}

    held = await store.run(beat, "renew the session leases")
    if held is None:
        return
    for lease in list(leases):
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


async def create(
    store: PostgresHistoryStore, key: str, conversation: Conversation, owner: Owner
) -> PostgresLease:
    """Take the lease of a new conversation and store its first version: one statement, so
    ``session/new`` waits for one round trip. An id that is stored already fails the
    statement as a whole (a unique violation), and one leased already writes nothing."""
    lease = PostgresLease(store, LeaseState(key, owner))
    params = {**lease._params(), **_document_params(conversation)}

    def insert(connection: Connection[Any]) -> bool:
        return connection.execute(_CREATE, params).fetchone() is not None

    if not await store.run(insert, f"store new conversation {key}"):
        raise HistoryError(f"conversation {key} exists already")
    lease.state.version = 1
    return lease


def _document_params(conversation: Conversation) -> dict[str, Any]:
    # Serialise in the caller's task: the conversation may change once we yield.
    document = codec.to_document(conversation)
    return {
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "meta": json.dumps(document["meta"], ensure_ascii=False),
        "document": json.dumps(document, ensure_ascii=False),
    }


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
        state = self.state
        params = {**self._params(), **_document_params(conversation), "expected": state.version}
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
