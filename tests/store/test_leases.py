"""One owner per conversation: leases, and the version every owner's save checks.

Both backends run the common cases; what only PostgreSQL has (expiry, renewal, takeover)
follows, with leases run out by moving their expiry in the database rather than by waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from openheim.config.model import StoreConfig
from openheim.config.paths import Paths
from openheim.foundation.errors import HistoryError
from openheim.foundation.models import Message
from openheim.store.base import HistoryStore
from openheim.store.files import FileHistoryStore
from openheim.store.lease import Owner, OwnershipLostError, SessionActiveElsewhereError
from openheim.store.postgres import PostgresHistoryStore
from openheim.store.select import open_history_store
from tests.store.test_conformance import conversation, store

__all__ = ["store"]


def other_owner(store: HistoryStore, name: str = "replica-b") -> HistoryStore:
    assert isinstance(store, FileHistoryStore | PostgresHistoryStore)
    return store.with_owner(Owner.new(name))


async def test_one_owner_at_a_time(store: HistoryStore) -> None:
    saved = conversation()
    lease = await store.acquire(saved.id)
    await lease.save(saved)
    with pytest.raises(SessionActiveElsewhereError) as refused:
        await other_owner(store).acquire(saved.id)
    if isinstance(store, PostgresHistoryStore):
        assert refused.value.public == (
            f"session {saved.id} is active on another server; retry in 30 s"
        )
        assert refused.value.retry_after == 30
    else:  # a lock lasts as long as its holder keeps the session
        assert "active in another openheim process" in refused.value.public
        assert refused.value.retry_after is None
    assert store.owner.id in str(refused.value)  # the log says who holds it
    assert store.owner.id not in refused.value.public
    await lease.release()
    taken = await other_owner(store).acquire(saved.id)
    assert (await taken.load()).messages == saved.messages
    await taken.release()


async def test_an_owner_saves_again_and_again(store: HistoryStore) -> None:
    convo = conversation()
    lease = await store.acquire(convo.id)
    for turn in range(3):
        convo.append(Message.user(f"turn {turn}"))
        await lease.save(convo)
    assert lease.state.version == 3 and not lease.state.lost
    await lease.release()
    again = await store.acquire(convo.id)
    assert (await again.load()).messages[-1] == Message.user("turn 2")
    assert again.state.version == 3
    await again.release()


async def test_a_save_after_someone_else_saved_fails_loudly_and_overwrites_nothing(
    store: HistoryStore,
) -> None:
    saved = conversation()
    await store.save(saved)
    lease = await store.acquire(saved.id)
    lost: list[str] = []
    lease.state.on_lost = lost.append
    mine = await lease.load()
    theirs = await store.load(saved.id)
    theirs.append(Message.user("theirs"))
    await store.save(theirs)  # unowned: no lease asked
    mine.append(Message.user("mine"))
    with pytest.raises(OwnershipLostError, match=f"session {saved.id} is no longer owned"):
        await lease.save(mine)
    assert lost and lease.state.lost
    assert (await store.load(saved.id)).messages[-1] == Message.user("theirs")
    with pytest.raises(OwnershipLostError):  # and stays lost
        await lease.save(mine)
    await lease.release()


async def test_create_owns_and_stores_a_new_conversation_in_one_step(
    store: HistoryStore,
) -> None:
    convo = conversation()
    lease = await store.create(convo)
    assert lease.state.version == 1
    assert (await store.load(convo.id)).messages == convo.messages  # stored at once
    with pytest.raises(SessionActiveElsewhereError):
        await other_owner(store).acquire(convo.id)
    convo.append(Message.user("later"))
    await lease.save(convo)  # the owner's next save finds its own first version
    assert lease.state.version == 2
    await lease.release()
    again = await other_owner(store).acquire(convo.id)
    assert (await again.load()).messages[-1] == Message.user("later")
    assert again.state.version == 2
    await again.release()


async def test_create_refuses_an_id_that_is_stored_and_changes_nothing(
    store: HistoryStore,
) -> None:
    stored = conversation()
    stored.append(Message.user("first"))
    await store.save(stored)
    clash = conversation()
    clash.id = stored.id
    with pytest.raises(HistoryError):
        await store.create(clash)
    assert (await store.load(stored.id)).messages[-1] == Message.user("first")
    taken = await other_owner(store).acquire(stored.id)  # no lease was left behind
    await taken.release()


async def test_create_refuses_an_id_another_owner_holds(store: HistoryStore) -> None:
    convo = conversation()
    theirs = await other_owner(store).acquire(convo.id)
    with pytest.raises((HistoryError, SessionActiveElsewhereError)):
        await store.create(convo)
    with pytest.raises(HistoryError):  # nothing was written
        await store.load(convo.id)
    await theirs.release()


async def test_a_file_lock_is_removed_with_its_lease(tmp_path: Path) -> None:
    files = FileHistoryStore(tmp_path)
    convo = conversation()
    lease = await files.acquire(convo.id)
    await lease.save(convo)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{convo.id}.json", f"{convo.id}.lock"]
    assert (tmp_path / f"{convo.id}.lock").read_text() == files.owner.id
    await lease.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{convo.id}.json"]


# --- PostgreSQL: expiry, renewal and takeover -------------------------------------------------


@pytest.fixture
async def replica_a(postgres_url: str, tmp_path: Path) -> AsyncIterator[PostgresHistoryStore]:
    owner = Owner.new("replica-a")
    async with open_history_store(
        StoreConfig(), Paths(tmp_path), env={}, override=postgres_url, owner=owner
    ) as opened:
        assert isinstance(opened, PostgresHistoryStore)
        yield opened


def run_out(url: str, conversation_id: str) -> None:
    """The lease's time is up, as if its owner had stopped renewing: its own expiry and its
    owner's heartbeat (so every lease of that owner) are in the past."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "UPDATE openheim_leases SET expires_at = now() - interval '1 second' WHERE id = %s",
            (conversation_id,),
        )
        connection.execute(
            "UPDATE openheim_owners SET expires_at = now() - interval '1 second' "
            "WHERE owner = (SELECT owner FROM openheim_leases WHERE id = %s)",
            (conversation_id,),
        )


def expiries(url: str, owner: Owner) -> tuple[float, list[float]]:
    """Seconds from now to the owner's heartbeat expiry, and to each of its leases' own."""
    with psycopg.connect(url, autocommit=True) as connection:
        beat = connection.execute(
            "SELECT extract(epoch FROM expires_at - now())::float8 FROM openheim_owners "
            "WHERE owner = %s",
            (owner.id,),
        ).fetchone()
        rows = connection.execute(
            "SELECT extract(epoch FROM expires_at - now())::float8 FROM openheim_leases "
            "WHERE owner = %s",
            (owner.id,),
        ).fetchall()
    assert beat is not None, "the owner never beat"
    return float(beat[0]), sorted(float(row[0]) for row in rows)


async def test_after_the_lease_runs_out_the_new_owner_fences_the_old(
    replica_a: PostgresHistoryStore, postgres_url: str
) -> None:
    replica_b = replica_a.with_owner(Owner.new("replica-b"))
    mine = conversation()
    lease_a = await replica_a.acquire(mine.id)
    await lease_a.save(mine)
    run_out(postgres_url, mine.id)
    lease_b = await replica_b.acquire(mine.id)
    theirs = await lease_b.load()
    theirs.append(Message.user("from B"))
    await lease_b.save(theirs)
    mine.append(Message.user("from A, too late"))
    with pytest.raises(OwnershipLostError, match="no longer owned"):
        await lease_a.save(mine)
    assert (await replica_a.load(mine.id)).messages[-1] == Message.user("from B")
    await lease_a.release()  # releases nothing of B's
    with pytest.raises(SessionActiveElsewhereError):
        await replica_a.acquire(mine.id)
    await lease_b.release()


async def test_renewal_keeps_leases_and_finds_the_lost_ones(
    replica_a: PostgresHistoryStore, postgres_url: str
) -> None:
    replica_b = replica_a.with_owner(Owner.new("replica-b"))
    kept, taken = conversation(), conversation()
    leases = [await replica_a.acquire(kept.id), await replica_a.acquire(taken.id)]
    lost: list[str] = []
    leases[1].state.on_lost = lost.append
    run_out(postgres_url, kept.id)
    run_out(postgres_url, taken.id)
    await replica_a.renew(leases)  # nobody took them meanwhile: both are held again
    assert not any(lease.state.lost for lease in leases)
    with pytest.raises(SessionActiveElsewhereError):
        await replica_b.acquire(kept.id)
    run_out(postgres_url, taken.id)
    taken_by_b = await replica_b.acquire(taken.id)
    await replica_a.renew(leases)
    assert not leases[0].state.lost
    assert leases[1].state.lost and lost == ["another server took its lease after it ran out"]
    for lease in (*leases, taken_by_b):
        await lease.release()


async def test_renewal_writes_one_heartbeat_not_every_lease(
    replica_a: PostgresHistoryStore, postgres_url: str
) -> None:
    leases = [await replica_a.acquire(conversation().id) for _ in range(3)]
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(  # as if taken 20 s ago: their own expiry is 10 s away
            "UPDATE openheim_leases SET expires_at = now() + interval '10 seconds' "
            "WHERE owner = %s",
            (replica_a.owner.id,),
        )
    await replica_a.renew(leases)
    beat, own = expiries(postgres_url, replica_a.owner)
    assert 29 < beat <= 30
    assert all(9 < left <= 10 for left in own) and len(own) == 3  # untouched
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE openheim_leases SET expires_at = now() - interval '1 second' WHERE owner = %s",
            (replica_a.owner.id,),
        )
    replica_b = replica_a.with_owner(Owner.new("replica-b"))
    with pytest.raises(SessionActiveElsewhereError) as refused:  # the heartbeat holds them
        await replica_b.acquire(leases[0].state.conversation_id)
    assert refused.value.retry_after == 30
    for lease in leases:
        await lease.release()


async def test_a_database_from_before_leases_is_migrated(postgres_url: str) -> None:
    from openheim.store.postgres import MIGRATIONS, migrate

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(MIGRATIONS[0][1])  # type: ignore[arg-type]
        connection.execute(
            "CREATE TABLE openheim_schema_migrations (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        connection.execute("INSERT INTO openheim_schema_migrations (version) VALUES (1)")
        assert migrate(connection) == [2, 3]
        found = connection.execute("SELECT to_regclass('openheim_leases')").fetchone()
    assert found is not None and found[0] == "openheim_leases"
