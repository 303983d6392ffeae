"""The doctor's history-store row: the store ``run`` and ``serve`` would use.

Nothing here changes the user's data: the file store gets a probe file that is removed
again, and PostgreSQL is only read (migrations stay the job of ``run`` and ``serve``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import trio

from openheim.config.model import Config
from openheim.config.paths import Paths
from openheim.doctor.rows import Row, Status, plural, split_fix
from openheim.foundation.errors import ConfigError, HistoryError
from openheim.foundation.fsutil import make_folders
from openheim.foundation.redact import strip_url_credentials
from openheim.store.select import store_url

#: Longest wait to connect to the history database and read its schema version.
STORE_TIMEOUT_SECS = 10.0


async def check_store(config: Config, paths: Paths, env: Mapping[str, str]) -> list[Row]:
    """Files (writable?) or PostgreSQL (reachable, and which schema version?)."""
    try:
        url = store_url(config.store, env)
    except ConfigError as exc:
        detail, fix = split_fix(str(exc))
        where = f"${config.store.url_env} or [store] url"
        return [Row("store", "", Status.FAIL, detail, fix or f"correct {where}")]
    if url is None:
        return [await _check_file_store(paths.history_dir)]
    source = f"${config.store.url_env}" if env.get(config.store.url_env, "").strip() else "[store]"
    return [await _check_postgres(url, source)]


async def _check_file_store(folder: Path) -> Row:
    data: dict[str, object] = {"kind": "file", "path": str(folder)}
    try:
        count = await trio.to_thread.run_sync(_probe_folder, folder)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        detail = f"{folder} is not writable: {reason}"
        fix = f"make {folder} a folder this user can write, or set OPENHEIM_HOME elsewhere"
        return Row("store", "file", Status.FAIL, detail, fix, data=data)
    data["conversations"] = count
    detail = f"{folder} is writable ({plural(count, 'conversation')})"
    return Row("store", "file", Status.OK, detail, data=data)


def _probe_folder(folder: Path) -> int:
    """Create the folder as a save would, write and delete a probe file, count conversations."""
    make_folders(folder, private=True)
    handle, name = tempfile.mkstemp(prefix=".doctor-", dir=folder)
    try:
        os.write(handle, b"openheim doctor probe\n")
    finally:
        os.close(handle)
        os.unlink(name)
    return sum(1 for entry in os.scandir(folder) if entry.name.endswith(".json"))


async def _check_postgres(url: str, source: str) -> Row:
    shown = strip_url_credentials(url)
    data: dict[str, object] = {"kind": "postgresql", "url": shown}

    def row(status: Status, detail: str, fix: str | None = None) -> Row:
        return Row("store", "postgresql", status, detail, fix, data=data)

    try:
        from openheim.store.postgres import SchemaVersion, schema_version
    except ImportError as exc:
        return row(
            Status.FAIL,
            f"{shown} needs psycopg ({exc})",
            "pip install 'openheim[postgres]'",
        )
    fix = f"check the URL (from {source}), that PostgreSQL runs and accepts this user"
    started = time.monotonic()
    found: SchemaVersion | None = None
    try:
        with trio.move_on_after(STORE_TIMEOUT_SECS + 2):
            found = await trio.to_thread.run_sync(
                lambda: schema_version(url, timeout=STORE_TIMEOUT_SECS), abandon_on_cancel=True
            )
    except HistoryError as exc:
        return row(Status.FAIL, f"{shown}: {exc}", fix)
    except Exception as exc:  # a URL psycopg cannot parse, and the like: its first line says why
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        return row(Status.FAIL, f"{shown}: cannot connect: {reason}", fix)
    if found is None:
        detail = f"{shown}: no answer within {STORE_TIMEOUT_SECS + 2:g} s"
        return row(Status.FAIL, detail, fix)
    schema, newest = found.applied, found.newest
    ms = round((time.monotonic() - started) * 1000)
    data.update(server_version=found.server, schema_version=schema, latency_ms=ms)
    head = f"{shown} connected in {ms} ms (PostgreSQL {found.server})"
    if schema is None:
        return row(Status.OK, f"{head}; schema not created yet (made on first use)")
    if schema > newest:
        return row(
            Status.FAIL,
            f"{head}; schema version {schema} is newer than this openheim knows ({newest})",
            "upgrade openheim to the version the other replicas run",
        )
    if schema < newest:
        return row(Status.OK, f"{head}; schema version {schema}, migrated to {newest} on start")
    return row(Status.OK, f"{head}; schema version {schema}")
