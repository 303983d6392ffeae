"""Which history store a process uses: the embedded file store, or PostgreSQL for fleets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import trio

from openheim.config.load import STORE_SCHEMES
from openheim.config.model import StoreConfig
from openheim.config.paths import Paths
from openheim.foundation.errors import ConfigError
from openheim.store.base import HistoryStore
from openheim.store.files import FileHistoryStore
from openheim.store.lease import Owner


def store_url(
    config: StoreConfig, env: Mapping[str, str], override: str | None = None
) -> str | None:
    """``--store`` wins, then the environment variable, then ``[store] url``."""
    url = override or env.get(config.url_env, "").strip() or config.url
    if url and url.lower() in ("file", "files"):
        return None
    if url and not url.startswith(STORE_SCHEMES):
        raise ConfigError(
            f"store {url!r} is not supported; use postgresql://USER@HOST/DB, or `file` for "
            "the JSON files under the openheim home"
        )
    return url or None


@asynccontextmanager
async def open_history_store(
    config: StoreConfig,
    paths: Paths,
    *,
    env: Mapping[str, str],
    override: str | None = None,
    owner: Owner | None = None,
) -> AsyncIterator[HistoryStore]:
    """The store for the ``async with`` body; a database pool is closed at the end.

    ``owner``: who this process is when it takes conversations' leases (a new one if None)."""
    url = store_url(config, env, override)
    owner = owner or Owner.new()
    if url is None:
        yield FileHistoryStore(paths.history_dir, owner=owner)
        return
    # Imported only here: the file store never loads psycopg.
    try:
        from openheim.store.postgres import PostgresHistoryStore, open_pool
    except ImportError as exc:  # psycopg is an optional dependency
        raise ConfigError(
            f"the PostgreSQL store needs psycopg ({exc}); fix: pip install 'openheim[postgres]'"
        ) from None

    pool = await trio.to_thread.run_sync(lambda: open_pool(url, max_size=config.pool_size))
    try:
        yield PostgresHistoryStore(pool, url, owner=owner)
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(pool.close)
