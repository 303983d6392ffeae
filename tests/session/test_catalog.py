"""The catalog the REST app and the library read: listings in pages, transcripts live or stored."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from openheim.config.load import parse_config
from openheim.config.paths import Paths
from openheim.foundation.errors import ConversationNotFoundError
from openheim.foundation.models import Message, Role
from openheim.session import SessionOptions, SessionRegistry, catalog, open_runtime
from openheim.testing import FakeLLMServer, Reply
from tests.session.test_session import config_text, llm, paths

__all__ = ["llm", "paths"]


async def test_pages_and_transcripts(llm: FakeLLMServer, paths: Paths, tmp_path: Path) -> None:
    llm.script.extend([Reply.text("one"), Reply.text("two"), Reply.text("three")])
    config = parse_config(config_text(llm), paths.config_file)
    async with (
        open_runtime(config, paths, env={}) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        ids = []
        for text in ("first", "second", "third"):
            session = await sessions.create(SessionOptions(cwd=tmp_path))
            await session.prompt(text)
            ids.append(session.id)

        listed = await catalog.list_conversations(sessions)
        assert [meta.id for meta in listed] == ids[::-1]
        assert [meta.title for meta in await catalog.list_conversations(sessions, 1)] == ["third"]
        first = await catalog.page(sessions, limit=2)
        assert [meta.id for meta in first.metas] == ids[:0:-1] and first.more
        last = await catalog.page(sessions, limit=2, offset=2)
        assert [meta.id for meta in last.metas] == ids[:1] and not last.more
        assert await catalog.page(sessions, limit=5, offset=3) == catalog.Page((), more=False)

        # A live session is read as it stands, before its history is saved.
        live = sessions.get(ids[0])
        assert live is not None
        live.conversation.append(Message.user("not saved yet"))
        seen = await catalog.transcript(sessions, ids[0])
        assert seen.meta.id == ids[0] and seen.meta.title == "first"
        assert [m.role for m in seen.messages] == [Role.USER, Role.ASSISTANT, Role.USER]
        live.conversation.append(Message.user("later"))
        assert len(seen.messages) == 3, "a transcript is a snapshot"

        # Closed, it comes from history.
        sessions.close(ids[0])
        stored = await catalog.transcript(sessions, ids[0])
        assert [m.content for m in stored.messages] == ["first", "one"]
        assert stored.meta.model == "m1" and stored.meta.provider == "fake"

        with pytest.raises(ConversationNotFoundError):
            await catalog.transcript(sessions, str(uuid.uuid4()))
