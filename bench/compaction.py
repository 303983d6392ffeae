"""Context compaction over a long session: request size stays bounded, and what it costs.

Run with ``.venv/bin/python bench/compaction.py [--turns 200] [--window 8000]``.

Each turn is tool-heavy: the model asks for one tool call, the tool returns ``--output-kb`` of
JSON-like text, the model answers. The provider is in-process (no HTTP): it counts a request's
tokens as the fake LLM server does (a quarter of its JSON characters), refuses one over the
window the way the loop sees a real refusal (``ContextTooLong``), reports the count as prompt
tokens, and answers summary requests at once. So the figures are the compaction's own work:
the estimate, the ladder and the view, timed per turn (``compaction_ms_per_turn``), beside the
same loop with compaction off (whose requests then grow without bound; it is run for fewer
turns for that reason).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from harness import emit_result

from openheim.agent.compaction.compactor import CompactionSettings
from openheim.agent.compaction.measure import Meter
from openheim.agent.compaction.summarise import SUMMARY_PROMPT
from openheim.agent.events import AgentEvent, Compacted
from openheim.agent.loop import Turn, TurnSettings
from openheim.foundation.errors import ContextTooLong
from openheim.foundation.models import (
    Conversation,
    ToolCall,
    ToolDefinition,
    ToolResult,
    Usage,
)
from openheim.providers.base import ChatRequest, FinishReason, ProviderEvent, StreamEnd
from openheim.providers.openai import message_to_openai
from openheim.tools.base import ToolContext, ToolRegistry


def tokens_of(request: ChatRequest) -> int:
    body = {
        "messages": [message_to_openai(m) for m in request.messages],
        "tools": [{"name": t.name, "description": t.description} for t in request.tools],
    }
    return len(json.dumps(body, separators=(",", ":"))) // 4


class Provider:
    """Answers like the fake LLM with a window, with no I/O."""

    def __init__(self, window: int | None) -> None:
        self.window = window
        self.sizes: list[int] = []
        self.refused = 0
        self.summaries = 0
        self._step = 0

    @asynccontextmanager
    async def stream(self, request: ChatRequest) -> AsyncIterator[AsyncIterator[ProviderEvent]]:
        tokens = tokens_of(request)
        if self.window is not None and tokens > self.window:
            self.refused += 1
            raise ContextTooLong("prompt is too long", status=400)
        summary = bool(request.messages) and request.messages[0].content == SUMMARY_PROMPT
        if summary:
            self.summaries += 1
            end = StreamEnd("The user fetched data sets.", (), FinishReason.STOP, Usage(tokens, 9))
        else:
            self.sizes.append(tokens)
            self._step += 1
            if self._step % 2:
                call = ToolCall(f"call_{self._step}", "fetch_data", "{}")
                end = StreamEnd("", (call,), FinishReason.TOOL_CALLS, Usage(tokens, 9))
            else:
                end = StreamEnd("Fine.", (), FinishReason.STOP, Usage(tokens, 3))
        yield _events(end)


async def _events(end: StreamEnd) -> AsyncIterator[ProviderEvent]:
    yield end


class DataTool:
    def __init__(self, size: int) -> None:
        row = '{"id": 1, "value": "abcdefghij", "ok": true},\n'
        self.output = (row * (size // len(row) + 1))[:size]

    @property
    def definition(self) -> ToolDefinition:
        return ToolDefinition("fetch_data", "Fetch a data set.")

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult(self.output)


class TimedTurn(Turn):
    """A turn that adds up the time its compaction checks take (the ladder included)."""

    spent = 0.0

    async def _compact(self, overflowed: ChatRequest | None = None) -> bool:
        started = time.perf_counter()
        try:
            return await super()._compact(overflowed)
        finally:
            TimedTurn.spent += time.perf_counter() - started


async def run_session(turns: int, window: int, output: int, compaction: bool) -> dict[str, Any]:
    provider = Provider(window if compaction else None)
    tools = ToolRegistry([DataTool(output)])
    conversation = Conversation(id="bench")
    meter = Meter()
    settings = TurnSettings(
        model="m",
        max_tokens=1000,
        system_prompt="You are a coding agent.",
        compaction=CompactionSettings(window, reply_tokens=1000) if compaction else None,
    )
    send, receive = trio.open_memory_channel[AgentEvent](1000)
    compactions: list[Compacted] = []
    per_turn: list[float] = []
    TimedTurn.spent = 0.0
    async with send, receive:
        for number in range(turns):
            turn = TimedTurn(
                conversation,
                f"Fetch data set {number}.",
                provider=provider,
                tools=tools,
                context=ToolContext(cwd=Path("/tmp"), session_id="bench"),
                settings=settings,
                events=send,
                meter=meter,
            )
            started = time.perf_counter()
            await turn.run()
            per_turn.append(time.perf_counter() - started)
            while True:
                try:
                    event = receive.receive_nowait()
                except trio.WouldBlock:
                    break
                if isinstance(event, Compacted):
                    compactions.append(event)
    half = len(provider.sizes) // 2
    return {
        "turns": turns,
        "max_request_tokens": max(provider.sizes),
        "max_request_tokens_second_half": max(provider.sizes[half:]),
        "last_request_tokens": provider.sizes[-1],
        "compactions": len(compactions),
        "methods": sorted({event.method for event in compactions}),
        "summaries_asked": provider.summaries,
        "refused": provider.refused,
        "ms_per_turn": 1000 * sum(per_turn) / len(per_turn),
        "compaction_ms_per_turn": 1000 * TimedTurn.spent / turns,
        "transcript_messages": len(conversation.messages),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--window", type=int, default=8000)
    parser.add_argument("--output-kb", type=float, default=6.0)
    args = parser.parse_args()
    output = int(args.output_kb * 1024)
    on = trio.run(run_session, args.turns, args.window, output, True)
    # Off, the requests grow without bound; fewer turns keep it comparable in time.
    off = trio.run(run_session, min(args.turns, 50), args.window, output, False)
    print(f"with compaction, {on['turns']} turns, window {args.window}:")
    for key, value in on.items():
        print(f"  {key}: {value}")
    print(f"without compaction, {off['turns']} turns (no window enforced):")
    for key, value in off.items():
        print(f"  {key}: {value}")
    bounded = on["max_request_tokens"] <= args.window
    print(f"request size bounded by the window: {'yes' if bounded else 'NO'}")
    emit_result(
        "compaction",
        turns=on["turns"],
        window=args.window,
        max_request_tokens=on["max_request_tokens"],
        bounded=bounded,
        compactions=on["compactions"],
        ms_per_turn=round(on["ms_per_turn"], 3),
        compaction_ms_per_turn=round(on["compaction_ms_per_turn"], 3),
        ms_per_turn_without=round(off["ms_per_turn"], 3),
    )


if __name__ == "__main__":
    main()
