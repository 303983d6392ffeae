"""What only the PostgreSQL store has: migrations, and the errors of a database gone wrong."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest
import trio

from openheim.config.model import StoreConfig
from openheim.config.paths import Paths
from openheim.foundation.errors import ConfigError, HistoryError
from openheim.store.postgres import MIGRATIONS, PostgresHistoryStore, migrate, open_pool
from openheim.store.select import open_history_store, store_url
from tests.store.test_conformance import conversation


def test_migrations_apply_once_and_a_newer_schema_is_refused(postgres_url: str) -> None:
    newest = MIGRATIONS[-1][0]
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        assert migrate(connection) == [version for version, _ in MIGRATIONS]
        assert migrate(connection) == []
        connection.execute(
            "INSERT INTO openheim_schema_migrations (version) VALUES (%s)", (newest + 1,)
        )
    with pytest.raises(HistoryError, match=f"schema version {newest + 1}, newer"):
        open_pool(postgres_url)


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    pools = []

    async def start() -> None:
        pools.append(await trio.to_thread.run_sync(open_pool, postgres_url))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(start)
    for pool in pools:
        pool.close()
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT count(*) FROM openheim_schema_migrations").fetchone()
    assert rows == (len(MIGRATIONS),)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_database_is_one_clear_error_without_the_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql://app:hunter2-SECRET@127.0.0.1:{_closed_port()}/db?connect_timeout=2"
    config = StoreConfig(pool_size=1)
    with pytest.raises(HistoryError) as caught:
        async with open_history_store(config, Paths(tmp_path), env={}, override=url):
            pass
    message = str(caught.value)
    assert "SECRET" not in message and "app:<redacted>@127.0.0.1" in message


async def test_a_database_lost_after_start_fails_calls_clearly(
    postgres_cluster: object, postgres_url: str
) -> None:
    pool = await trio.to_thread.run_sync(lambda: open_pool(postgres_url, timeout=2))
    store = PostgresHistoryStore(pool, postgres_url)
    saved = conversation()
    await store.save(saved)
    name = postgres_url.rsplit("/", 1)[1]
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[arg-type]
    with pytest.raises(HistoryError, match="could not load conversation"):
        await store.load(saved.id)
    await trio.to_thread.run_sync(pool.close)


def test_store_urls_are_chosen_flag_then_env_then_config() -> None:
    config = StoreConfig(url="postgresql://config/db")
    env = {"OPENHEIM_STORE_URL": "postgresql://env/db"}
    assert store_url(config, env, "postgresql://flag/db") == "postgresql://flag/db"
    assert store_url(config, env) == "postgresql://env/db"
    assert store_url(config, {}) == "postgresql://config/db"
    assert store_url(config, env, "file") is None
    assert store_url(StoreConfig(), {}) is None
    with pytest.raises(ConfigError, match="not supported"):
        store_url(StoreConfig(), {}, "mysql://x/y")
