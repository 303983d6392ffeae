"""The embedded default store: one JSON file per conversation.

Writes go to a temp file in the same folder, are fsynced and renamed over the old file, so a
crash or a full disk leaves either the previous version or the new one, never half a file.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Collection
from pathlib import Path

import trio

from openheim.foundation.errors import HistoryError
from openheim.foundation.models import Conversation
from openheim.store import codec
from openheim.store.base import ConversationMeta
from openheim.store.file_io import Stamp, delete_document, read_document, write_document
from openheim.store.file_lease import FileLease, lock, unlock
from openheim.store.lease import Lease, LeaseState, Owner

log = logging.getLogger(__name__)


def normalise_id(conversation_id: str) -> str:
    """Accept only UUIDs, so an id can never name a path outside the history folder."""
    try:
        return str(uuid.UUID(conversation_id))
    except (ValueError, AttributeError, TypeError):
        raise HistoryError(
            f"invalid conversation id {conversation_id!r}: expected a UUID such as "
            "6f1c3f0e-1d2b-4c5a-9e8f-0a1b2c3d4e5f"
        ) from None


class FileHistoryStore:
    def __init__(
        self, directory: Path, *, tenants_root: Path | None = None, owner: Owner | None = None
    ) -> None:
        self.directory = directory
        #: Where other tenants' folders go: ``<tenants_root>/<name>/history``.
        self.tenants_root = tenants_root or directory.parent / "tenants"
        self.owner = owner or Owner.new()

    def for_tenant(self, name: str) -> FileHistoryStore:
        return FileHistoryStore(
            self.tenants_root / name / "history", tenants_root=self.tenants_root, owner=self.owner
        )

    def with_owner(self, owner: Owner) -> FileHistoryStore:
        """The same folder as seen by another owner (another process, in tests)."""
        return FileHistoryStore(self.directory, tenants_root=self.tenants_root, owner=owner)

    def path_for(self, conversation_id: str) -> Path:
        return self.directory / f"{normalise_id(conversation_id)}.json"

    async def acquire(self, conversation_id: str) -> FileLease:
        key = normalise_id(conversation_id)
        path = self.directory / f"{key}.json"
        lock_path = self.directory / f"{key}.lock"
        fd = await trio.to_thread.run_sync(lock, lock_path, key, self.owner)
        return FileLease(LeaseState(key, self.owner), path, lock_path, fd)

    async def create(self, conversation: Conversation) -> FileLease:
        """Lock and write the first version in one trip to a worker thread."""
        document = codec.to_document(conversation)
        key = normalise_id(conversation.id)
        path, lock_path = self.directory / f"{key}.json", self.directory / f"{key}.lock"
        lease = FileLease(LeaseState(key, self.owner), path, lock_path, None)

        def take_and_write() -> Stamp | None:
            lease.fd = lock(lease.lock_path, key, self.owner)
            try:
                return lease.write_locked(document)
            except BaseException:
                unlock(lease.lock_path, lease.fd)
                raise

        written = await trio.to_thread.run_sync(take_and_write)
        if written is None:  # a file with this new id exists: not this owner's to replace
            await lease.release()
            raise HistoryError(f"conversation {key} exists already")
        lease.saved(written)
        return lease

    async def renew(self, leases: Collection[Lease], *, check: bool = False) -> None:
        """Locks need no renewal: the kernel holds them while this process lives."""

    async def save(self, conversation: Conversation) -> None:
        """Unowned: no lock is taken (tools, tests); the file changes, so an owner that saves
        next finds out."""
        # Serialise in the caller's task: the conversation may change once we yield.
        document = codec.to_document(conversation)
        path = self.path_for(conversation.id)
        await trio.to_thread.run_sync(write_document, path, document)

    async def load(self, conversation_id: str) -> Conversation:
        path = self.path_for(conversation_id)
        document = await trio.to_thread.run_sync(read_document, path, conversation_id)
        try:
            return codec.from_document(document)
        except Exception as exc:  # cattrs reports shape errors as exception groups
            raise HistoryError(
                f"conversation file {path} is not valid: {exc}",
                public=f"conversation {conversation_id} is stored but not valid",
            ) from None

    async def list(self, limit: int | None = None) -> list[ConversationMeta]:
        return await trio.to_thread.run_sync(self._list_sync, limit)

    async def delete(self, conversation_id: str) -> None:
        path = self.path_for(conversation_id)
        await trio.to_thread.run_sync(delete_document, path, conversation_id)

    def _list_sync(self, limit: int | None) -> list[ConversationMeta]:
        # Each save rewrites the file, so mtime order is updated_at order; stat is cheap and
        # lets a limited listing parse only the files it returns.
        try:
            entries = [
                (entry.stat().st_mtime_ns, Path(entry.path))
                for entry in os.scandir(self.directory)
                if entry.name.endswith(".json") and entry.is_file()
            ]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise HistoryError(
                f"cannot list {self.directory}: {exc}", public="cannot list the conversations"
            ) from None
        entries.sort(reverse=True)
        metas: list[ConversationMeta] = []
        for _, path in entries:
            if limit is not None and len(metas) >= limit:
                break
            try:
                with path.open("rb") as handle:
                    metas.append(codec.meta_from_document(json.load(handle)))
            except Exception as exc:
                log.warning("skipping unreadable conversation file %s: %s", path, exc)
        metas.sort(key=lambda meta: meta.updated_at, reverse=True)
        return metas
