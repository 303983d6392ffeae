"""Agent-loop overhead per turn, outside LLM and tool time.

Run with ``.venv/bin/python bench/loop_overhead.py [--turns 5000] [--http-turns 500]``.

A turn here is what a coding agent does most: the model asks for one tool call, the tool runs,
the model answers in ``--deltas`` text pieces (two model calls, one tool call). The provider is
an in-process object with ``ProviderClient``'s ``stream`` interface that yields pre-built events
with no I/O, and the tool does nothing, so what is left is the loop's own cost: requests built,
events sent, history appended, tool looked up and approved. Their own (tiny) cost is measured
apart, with no loop around them, and subtracted.

Levels, each timed over the same turns after a warm-up:

- ``turn``: ``openheim.agent.loop.Turn.run`` alone, events drained by one task (the headline);
- ``session``: ``Session.prompt`` (actor, turn slot, event fan-out to one subscriber) with a
  store that discards saves;
- ``session+files``: the same with the JSON file history store (a save per turn, fsynced; at
  most ``FILE_TURNS`` turns, as each costs milliseconds of disk time);
- ``http``: the same session against the real fake LLM server (in this process) through the
  real provider client, for context: that is HTTP and SSE, not loop overhead.

Conversations start afresh every ``--turns-per-conversation`` turns, as a session's would;
requests carry the whole history, so longer conversations cost more per turn.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from harness import emit_result, verdict

from openheim.agent.events import AgentEvent
from openheim.agent.loop import Turn, TurnSettings
from openheim.config.load import load_config
from openheim.config.model import Config, ProviderConfig
from openheim.config.paths import Paths
from openheim.foundation.models import (
    Conversation,
    Message,
    Role,
    ToolCall,
    ToolDefinition,
    ToolResult,
    Usage,
)
from openheim.providers.base import (
    ChatRequest,
    FinishReason,
    ProviderEvent,
    StreamEnd,
    TextDelta,
)
from openheim.session import Runtime, SessionOptions, SessionRegistry, open_runtime
from openheim.store.base import ConversationMeta, HistoryStore
from openheim.store.files import FileHistoryStore
from openheim.store.lease import Lease, LeaseState, Owner
from openheim.testing import Reply, Script, open_fake_llm
from openheim.tools.base import ToolContext, ToolRegistry

TARGET_MS = 1.0
FILE_TURNS = 1000
USAGE = Usage(input_tokens=10, output_tokens=5)
CALL = ToolCall("call_1", "noop", "{}")


# --- the instant parts -----------------------------------------------------------------------


class _Events:
    """An async iterator over a fixed list (what a provider stream looks like to the loop)."""

    def __init__(self, events: list[ProviderEvent]) -> None:
        self._events = iter(events)

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> ProviderEvent:
        try:
            return next(self._events)
        except StopIteration:
            raise StopAsyncIteration from None


class InstantProvider:
    """``ProviderClient.stream`` with no I/O: a tool call after a user message, text after a
    tool result."""

    def __init__(self, deltas: int) -> None:
        pieces = [f"word{i} " for i in range(deltas)]
        self.text_reply: list[ProviderEvent] = [TextDelta(p) for p in pieces]
        self.text_reply.append(StreamEnd("".join(pieces), (), FinishReason.STOP, USAGE))
        self.tool_reply: list[ProviderEvent] = [
            StreamEnd("", (CALL,), FinishReason.TOOL_CALLS, USAGE),
        ]

    @asynccontextmanager
    async def stream(self, request: ChatRequest) -> AsyncIterator[_Events]:
        last = request.messages[-1].role
        yield _Events(self.text_reply if last is Role.TOOL else self.tool_reply)


class NoopTool:
    definition = ToolDefinition("noop", "Does nothing.")

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult("ok")


class NullLease:
    """Ownership that costs nothing (there is nobody to share the store with)."""

    def __init__(self, conversation_id: str, owner: Owner) -> None:
        self.state = LeaseState(conversation_id, owner)

    async def load(self) -> Conversation:
        raise NotImplementedError

    async def save(self, conversation: Conversation) -> None:
        return None

    async def release(self) -> None:
        return None


class NullStore:
    """A history store that keeps nothing (saves cost nothing)."""

    owner = Owner.new("bench")

    async def acquire(self, conversation_id: str) -> NullLease:
        return NullLease(conversation_id, self.owner)

    async def renew(self, leases: Sequence[Lease]) -> None:
        return None

    async def save(self, conversation: Conversation) -> None:
        return None

    async def load(self, conversation_id: str) -> Conversation:
        raise NotImplementedError

    async def list(self, limit: int | None = None) -> list[ConversationMeta]:
        return []

    def for_tenant(self, name: str) -> HistoryStore:
        return self


class InstantPool:
    """Stands in for ``ProviderPool``: every provider is the instant one."""

    def __init__(self, provider: InstantProvider) -> None:
        self.provider = provider

    async def get(self, config: ProviderConfig) -> InstantProvider:
        return self.provider


# --- levels ----------------------------------------------------------------------------------

RunTurns = Callable[[int], Awaitable[None]]


async def drain(events: trio.MemoryReceiveChannel[Any]) -> None:
    async with events:
        async for _ in events:
            pass


def turn_level(provider: InstantProvider, per_conversation: int) -> RunTurns:
    tools = ToolRegistry([NoopTool()])
    context = ToolContext(cwd=Path.cwd())
    settings = TurnSettings(model="m", system_prompt="You are a benchmark.")

    async def run(turns: int) -> None:
        send, receive = trio.open_memory_channel[AgentEvent](64)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, receive)
            async with send:
                conversation = Conversation(id="bench")
                for index in range(turns):
                    if index % per_conversation == 0:
                        conversation = Conversation(id="bench")
                    turn = Turn(
                        conversation,
                        "go",
                        provider=provider,
                        tools=tools,
                        context=context,
                        settings=settings,
                        events=send,
                    )
                    await turn.run()

    return run


@asynccontextmanager
async def session_level(
    runtime: Runtime, workdir: Path, per_conversation: int
) -> AsyncIterator[RunTurns]:
    async with SessionRegistry.open(runtime) as registry, trio.open_nursery() as nursery:

        async def run(turns: int) -> None:
            session = None
            for index in range(turns):
                if index % per_conversation == 0:
                    if session is not None:
                        registry.close(session.id)
                    session = await registry.create(SessionOptions(cwd=workdir))
                    nursery.start_soon(drain, session.subscribe())
                await session.prompt("go")
            if session is not None:
                registry.close(session.id)

        yield run
        nursery.cancel_scope.cancel()


def make_runtime(config: Config, paths: Paths, store: HistoryStore, provider: Any) -> Runtime:
    return Runtime(
        config,
        paths,
        env={},
        store=store,
        providers=provider,
        extra_tools=lambda: [NoopTool()],
    )


# --- measuring -------------------------------------------------------------------------------


async def time_per_turn(run: RunTurns, turns: int, warm_up: int) -> float:
    await run(warm_up)
    started = time.perf_counter()
    await run(turns)
    return (time.perf_counter() - started) / turns


async def intrinsic_cost(provider: InstantProvider, repeats: int) -> float:
    """Seconds per turn spent inside the instant provider and tool themselves."""
    tool = NoopTool()
    context = ToolContext(cwd=Path.cwd())
    requests = [
        ChatRequest("m", (Message.user("go"),)),
        ChatRequest("m", (Message.tool(CALL, ToolResult("ok")),)),
    ]
    started = time.perf_counter()
    for _ in range(repeats):
        for request in requests:
            async with provider.stream(request) as events:
                async for _event in events:
                    pass
        await tool.call({}, context)
    return (time.perf_counter() - started) / repeats


async def measure(args: argparse.Namespace) -> dict[str, float]:
    provider = InstantProvider(args.deltas)
    warm_up = max(args.turns // 10, 50)
    per = args.turns_per_conversation
    figures: dict[str, float] = {}
    intrinsic = await intrinsic_cost(provider, args.turns)
    figures["intrinsic_us"] = intrinsic * 1e6
    figures["turn_ms"] = (
        await time_per_turn(turn_level(provider, per), args.turns, warm_up) - intrinsic
    ) * 1000
    with tempfile.TemporaryDirectory(prefix="openheim-bench-") as folder:
        home = Path(folder)
        (home / "work").mkdir()
        llm_config = 'default_provider = "fake"\n[providers.fake]\ndefault_model = "m"\n'
        (home / "config.toml").write_text(llm_config + 'api_base = "http://127.0.0.1:9/v1"\n')
        config = load_config(home / "config.toml")
        paths = Paths(home)
        pool = InstantPool(provider)
        runtime = make_runtime(config, paths, NullStore(), pool)
        async with session_level(runtime, home / "work", per) as run:
            per_turn = await time_per_turn(run, args.turns, warm_up)
        figures["session_ms"] = (per_turn - intrinsic) * 1000
        files = FileHistoryStore(paths.history_dir)
        runtime = make_runtime(config, paths, files, pool)
        file_turns = min(args.turns, FILE_TURNS)
        async with session_level(runtime, home / "work", per) as run:
            per_turn = await time_per_turn(run, file_turns, file_turns // 10)
        figures["session_files_ms"] = (per_turn - intrinsic) * 1000
        if args.http_turns:
            figures["http_ms"] = await http_level(home, llm_config, args) * 1000
    return figures


async def http_level(home: Path, llm_config: str, args: argparse.Namespace) -> float:
    """Seconds per turn of a session whose provider is the real client and fake server."""
    text = Reply.text("".join(f"word{i} " for i in range(args.deltas)), pieces=args.deltas)
    script = Script([Reply.tool_call("noop", {}), text], repeat=True)
    async with open_fake_llm(script) as llm:
        (home / "config.toml").write_text(llm_config + f'api_base = "{llm.base_url}"\n')
        config = load_config(home / "config.toml")
        async with (
            open_runtime(
                config, Paths(home), env={}, store=NullStore(), extra_tools=lambda: [NoopTool()]
            ) as runtime,
            session_level(runtime, home / "work", args.turns_per_conversation) as run,
        ):
            return await time_per_turn(run, args.http_turns, args.http_turns // 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument("--http-turns", type=int, default=500, help="0 skips the HTTP level")
    parser.add_argument("--deltas", type=int, default=20, help="text pieces in the answer")
    parser.add_argument("--turns-per-conversation", type=int, default=20)
    args = parser.parse_args()
    figures = trio.run(measure, args)
    turn = figures["turn_ms"]
    print(
        f"loop overhead per turn (1 tool call, 2 model calls, {args.deltas} text deltas): "
        f"Turn {turn:.3f} ms ({verdict(turn, TARGET_MS)} {TARGET_MS:g} ms); "
        f"Session {figures['session_ms']:.3f} ms; "
        f"Session + file history {figures['session_files_ms']:.3f} ms "
        f"(instant provider + tool themselves: {figures['intrinsic_us']:.1f} µs, subtracted)"
    )
    if "http_ms" in figures:
        print(
            f"for context, a whole turn against the fake LLM over HTTP (same process): "
            f"{figures['http_ms']:.2f} ms"
        )
    rounded = {key: round(value, 4) for key, value in figures.items()}
    emit_result("loop_overhead", target_ms=TARGET_MS, turns=args.turns, **rounded)


if __name__ == "__main__":
    main()
