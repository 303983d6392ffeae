"""The fault matrix's harness: a real runtime (``OpenheimClient``) on a temporary home, its
provider pointed at the scripted fake LLM on 127.0.0.1, and helpers that compare what the
history store holds with what the next model request carries."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from openheim import OpenheimClient
from openheim.agent.events import (
    AgentEvent,
    MessageChunk,
    ProviderRetrying,
    ToolCallFinished,
    TurnFinished,
)
from openheim.client import ClientSession
from openheim.foundation.errors import OpenheimError
from openheim.testing import FakeLLMServer, Reply, open_fake_llm
from tests.faults.proxy import ResettingProxy

API_KEY = "sk-faults-0123456789abcdef"
#: Generous for one turn on a loaded 2-core machine; a hang fails the test instead of CI.
TURN_TIMEOUT = 20
#: ``OPENHEIM_FAULTS=full`` runs the rows with a natural count (SIGKILLs) at full strength.
FULL = os.environ.get("OPENHEIM_FAULTS", "quick") == "full"

#: A message reduced to what must survive a fault: role, text, and the tool call ids it
#: carries (an assistant's calls, or the call a tool result answers). The OpenAI wire format
#: and the history document both have this shape, so one function reads both.
Summary = tuple[str, str, tuple[str, ...]]


def summary(message: dict[str, Any]) -> Summary:
    calls = tuple(call["id"] for call in message.get("tool_calls") or ())
    if message.get("tool_call_id"):
        calls = (message["tool_call_id"],)
    return message["role"], message.get("content") or "", calls


def user(text: str) -> Summary:
    return "user", text, ()


def assistant(text: str, *calls: str) -> Summary:
    return "assistant", text, calls


@attrs.define
class Harness:
    """A home whose config points at the fake LLM; ``open`` starts a client on it."""

    home: Path
    workdir: Path
    llm: FakeLLMServer

    @property
    def history_dir(self) -> Path:
        return self.home / "history"

    def write_config(
        self, *, timeout_secs: float = 5.0, extra: str = "", api_base: str | None = None
    ) -> None:
        """Two retries 50 ms apart keep retrying rows fast; ``extra`` adds TOML tables;
        ``api_base`` puts something (a proxy) between the provider and the fake LLM."""
        (self.home / "config.toml").write_text(
            f"""default_provider = "fake"
max_iterations = 5

[providers.fake]
kind = "openai"
api_base = "{api_base or self.llm.base_url}"
default_model = "fake-model"
models = ["fake-model"]
env_var = "FAKE_LLM_KEY"
max_retries = 2
retry_initial_delay_secs = 0.05
retry_max_delay_secs = 5
timeout_secs = {timeout_secs}
connect_timeout_secs = 2
{extra}
"""
        )

    @asynccontextmanager
    async def open(self) -> AsyncIterator[OpenheimClient]:
        async with OpenheimClient.open(home=self.home, env={"FAKE_LLM_KEY": API_KEY}) as client:
            yield client

    async def new_session(self, client: OpenheimClient) -> ClientSession:
        return await client.new_session(cwd=self.workdir, allow_all_tools=True)

    def stored(self, session_id: str) -> list[Summary]:
        """The conversation as the history store holds it on disk right now."""
        document = json.loads((self.history_dir / f"{session_id}.json").read_text())
        return [summary(message) for message in document["messages"]]

    def sent(self, index: int = -1) -> list[Summary]:
        """The conversation a model request carried (the system prompt left out)."""
        body = self.llm.requests[index].body
        assert isinstance(body, dict)
        return [summary(m) for m in body["messages"] if m["role"] != "system"]

    async def check_reusable(
        self, session: ClientSession, before: Sequence[Summary] | None = None
    ) -> None:
        """The next prompt in the same session succeeds, its request carries ``before`` (by
        default everything the store holds now), and the store then holds that plus the new
        exchange."""
        before = list(self.stored(session.id) if before is None else before)
        requests = len(self.llm.requests)
        self.llm.script.append(Reply.text("Recovered."))
        outcome = await run_turn(session, "are you still there?")
        assert outcome.error is None, outcome.error
        assert outcome.finished is not None and outcome.finished.stop_reason == "end_turn"
        assert outcome.text == "Recovered."
        assert len(self.llm.requests) == requests + 1
        assert self.sent() == [*before, user("are you still there?")]
        assert self.stored(session.id) == [
            *before,
            user("are you still there?"),
            assistant("Recovered."),
        ]


@attrs.frozen
class Outcome:
    """What the caller of one turn saw: its events in order, and the error it raised."""

    events: Sequence[AgentEvent]
    error: OpenheimError | None

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, MessageChunk))

    @property
    def retries(self) -> list[ProviderRetrying]:
        return [e for e in self.events if isinstance(e, ProviderRetrying)]

    @property
    def tool_results(self) -> list[ToolCallFinished]:
        return [e for e in self.events if isinstance(e, ToolCallFinished)]

    @property
    def finished(self) -> TurnFinished | None:
        return next((e for e in self.events if isinstance(e, TurnFinished)), None)


async def run_turn(
    session: ClientSession, text: str, seen: Callable[[AgentEvent], None] | None = None
) -> Outcome:
    """One prompt through the streaming API, as a UI would drive it; ``seen`` is told of each
    event as it arrives (a test acts on what the caller has received)."""
    events: list[AgentEvent] = []
    error: OpenheimError | None = None
    with trio.fail_after(TURN_TIMEOUT):
        async with session.stream(text) as stream:
            try:
                async for event in stream:
                    events.append(event)
                    if seen is not None:
                        seen(event)
            except OpenheimError as exc:
                error = exc
    return Outcome(events, error)


@pytest.fixture
async def proxy(harness: Harness, nursery: trio.Nursery) -> ResettingProxy:
    """A resetting proxy in front of the fake LLM, already in the harness's config."""
    host, port = harness.llm.url.removeprefix("http://").rsplit(":", 1)
    proxy = ResettingProxy((host, int(port)))
    await nursery.start(proxy.serve)
    harness.write_config(api_base=f"{proxy.url}/v1")
    return proxy


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_fake_llm() as llm:
        harness = Harness(tmp_path / "home", tmp_path / "work", llm)
        harness.home.mkdir()
        harness.workdir.mkdir()
        harness.write_config()
        yield harness


async def session_with_history(harness: Harness, client: OpenheimClient) -> ClientSession:
    """A session that already holds one good exchange: the "everything before" a fault."""
    session = await harness.new_session(client)
    harness.llm.script.append(Reply.text("Hi."))
    outcome = await run_turn(session, "hello")
    assert outcome.error is None and outcome.text == "Hi."
    assert harness.stored(session.id) == [user("hello"), assistant("Hi.")]
    return session
