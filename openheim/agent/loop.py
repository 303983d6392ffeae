"""One agent turn: call the model, run the tools it asks for, feed results back, repeat.

The turn owns a cancel scope. Cancelling it (Ctrl-C, ACP ``session/cancel``, shutdown) stops
the LLM stream and kills tool process groups; whatever happens, the conversation is left
valid: every tool call the model asked for has a result before anyone saves it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs
import trio

from openheim.agent.compaction.compactor import CompactionSettings
from openheim.agent.compaction.measure import Meter, request_units
from openheim.agent.compaction.runner import compact_conversation
from openheim.agent.compaction.view import view
from openheim.agent.events import (
    CANCELLED_RESULT,
    Compacted,
    EventSink,
    MessageChunk,
    PlanUpdated,
    ProviderRetrying,
    StopReason,
    ThoughtChunk,
    ToolCallFinished,
    ToolCallProgress,
    ToolCallStarted,
    TurnFinished,
)
from openheim.agent.text_tool_calls import recover_tool_calls
from openheim.config.model import ModelPrice
from openheim.foundation.errors import ContextTooLong
from openheim.foundation.models import (
    Conversation,
    Message,
    Prompt,
    Reasoning,
    ReasoningLevel,
    ToolCall,
    ToolResult,
    Usage,
)
from openheim.observe import NULL_OBSERVER, Observer
from openheim.providers.base import (
    ChatRequest,
    FinishReason,
    ProviderEvent,
    Retrying,
    StreamEnd,
    TextDelta,
    ThinkingDelta,
)
from openheim.tools.base import ToolContext, ToolRegistry
from openheim.tools.plan_core import Plan

_STOP_REASONS = {
    FinishReason.LENGTH: StopReason.MAX_TOKENS,
    FinishReason.REFUSAL: StopReason.REFUSAL,
}


#: Asked before each tool call; returns why the call is refused, or ``None`` to let it run.
Approver = Callable[[ToolCall], Awaitable[str | None]]


class ChatProvider(Protocol):
    def stream(
        self, request: ChatRequest
    ) -> AbstractAsyncContextManager[AsyncIterator[ProviderEvent]]: ...


@attrs.frozen
class TurnSettings:
    model: str
    max_iterations: int = 10
    max_tokens: int | None = None
    system_prompt: str | None = None
    price: ModelPrice | None = None
    #: Accept a reply whose whole text is a JSON tool call (local models do that).
    recover_text_tool_calls: bool = False
    reasoning: ReasoningLevel = ReasoningLevel.OFF
    #: The model's window and when to compact in it; None sends the whole transcript.
    compaction: CompactionSettings | None = None


class Turn:
    """A single prompt's run through the loop; ``cancel()`` may be called from any task."""

    def __init__(
        self,
        conversation: Conversation,
        prompt: str | Prompt,
        *,
        provider: ChatProvider,
        tools: ToolRegistry,
        context: ToolContext,
        settings: TurnSettings,
        events: EventSink,
        approve: Approver | None = None,
        observer: Observer = NULL_OBSERVER,
        meter: Meter | None = None,
    ) -> None:
        self.conversation = conversation
        #: The session's token meter (it learns across turns); a turn alone gets its own.
        self.meter = meter if meter is not None else Meter()
        self.observer = observer
        self.approve = approve
        self.prompt = prompt
        self.provider = provider
        self.tools = tools
        self.context = context
        self.settings = settings
        self.events = events
        self.cancel_scope = trio.CancelScope()
        self._partial_text: list[str] = []
        self._partial_thought: list[str] = []
        self._finished_results: dict[str, ToolResult] = {}
        self._usage = Usage()
        self._context_tokens = 0
        self._iterations = 0

    def cancel(self) -> None:
        self.cancel_scope.cancel()

    async def run(self) -> TurnFinished:
        """Run to a final answer, ``max_iterations``, or cancellation.

        ``ProviderError`` propagates (the conversation is settled first); cancellation of
        this turn's own scope returns a ``cancelled`` outcome instead of raising.
        """
        self.conversation.append(Message.user(self.prompt))
        try:
            with self.cancel_scope:
                stop_reason = await self._loop()
        finally:
            self._settle()
            self.conversation.record_usage(self._usage, self._cost())
        if self.cancel_scope.cancelled_caught:
            stop_reason = StopReason.CANCELLED
        finished = TurnFinished(
            stop_reason, self._usage, self._iterations, self._cost(), self._context_tokens
        )
        await self.events.send(finished)
        return finished

    async def _loop(self) -> StopReason:
        while self._iterations < self.settings.max_iterations:
            self._iterations += 1
            end = self._recover_text_tool_calls(await self._call_model())
            self.conversation.append(Message.assistant(end.text, end.tool_calls, end.reasoning))
            if not end.tool_calls:
                return _STOP_REASONS.get(end.finish_reason, StopReason.END_TURN)
            await self._run_tools(end.tool_calls)
        return StopReason.MAX_TURN_REQUESTS

    async def _call_model(self) -> StreamEnd:
        """One model request, compacted first when it would pass the threshold; a request
        the provider refuses as too long is compacted harder and sent once more."""
        await self._compact()
        request = self._request()
        try:
            return await self._stream(request)
        except ContextTooLong:
            if not await self._compact(overflowed=request):
                raise
        return await self._stream(self._request())

    def _head(self) -> tuple[Message, ...]:
        system = self.settings.system_prompt
        return (Message.system(system),) if system else ()

    def _request(self) -> ChatRequest:
        return ChatRequest(
            model=self.settings.model,
            messages=(*self._head(), *view(self.conversation)),
            tools=self.tools.definitions(),
            max_tokens=self.settings.max_tokens,
            reasoning=self.settings.reasoning,
        )

    async def _compact(self, overflowed: ChatRequest | None = None) -> bool:
        """Compact the conversation if the next request needs it (or the provider refused
        ``overflowed``); whether the view changed."""
        settings = self.settings.compaction
        if settings is None:
            return False
        model = self.settings.model
        if overflowed is not None:
            units = request_units(overflowed.messages, overflowed.tools)
            self.meter.overflowed(units, settings.prompt_room, model)
        outcome = await compact_conversation(
            self.conversation,
            provider=self.provider,
            model=model,
            head=self._head(),
            tools=self.tools.definitions(),
            meter=self.meter,
            settings=settings,
            force=overflowed is not None,
        )
        if outcome is None:
            return False
        self._usage += outcome.usage
        record = outcome.record
        await self.events.send(
            Compacted(record.tokens_before, record.tokens_after, record.method.value)
        )
        return True

    async def _stream(self, request: ChatRequest) -> StreamEnd:
        self._partial_text = []
        self._partial_thought = []
        async with self.provider.stream(request) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    self._partial_text.append(event.text)
                    await self.events.send(MessageChunk(event.text))
                elif isinstance(event, ThinkingDelta):
                    self._partial_thought.append(event.text)
                    await self.events.send(ThoughtChunk(event.text))
                elif isinstance(event, Retrying):
                    await self.events.send(
                        ProviderRetrying(
                            event.describe(), event.attempt, event.max_attempts, event.delay
                        )
                    )
                elif isinstance(event, StreamEnd):
                    self._partial_text = []
                    self._partial_thought = []
                    if event.usage is not None:
                        self._usage += event.usage
                        self._context_tokens = event.usage.input_tokens + event.usage.output_tokens
                        units = request_units(request.messages, request.tools)
                        self.meter.observe(units, event.usage.input_tokens, request.model)
                    return event
        raise AssertionError("provider stream ended without StreamEnd or an error")

    def _recover_text_tool_calls(self, end: StreamEnd) -> StreamEnd:
        if not self.settings.recover_text_tool_calls or end.tool_calls or not end.text:
            return end
        calls = recover_tool_calls(end.text, self.tools, f"call_text_{secrets.token_hex(4)}")
        if not calls:
            return end
        return attrs.evolve(end, text="", tool_calls=calls, finish_reason=FinishReason.TOOL_CALLS)

    async def _run_tools(self, calls: Sequence[ToolCall]) -> None:
        self._finished_results = {}
        async with trio.open_nursery() as nursery:
            for call in calls:
                nursery.start_soon(self._run_tool, call)
        # Results go back in the order the model asked, whatever order they finished in.
        for call in calls:
            self.conversation.append(Message.tool(call, self._finished_results[call.id]))

    async def _run_tool(self, call: ToolCall) -> None:
        await self.events.send(ToolCallStarted(call))
        started = time.monotonic()
        attributes = {"openheim.tool": call.name, "openheim.tool_call_id": call.id}
        with self.observer.span("openheim.tool_call", attributes):
            result = await self._execute(call, self._context_for(call))
        self._finished_results[call.id] = result
        await self.events.send(ToolCallFinished(call, result, time.monotonic() - started))

    def _context_for(self, call: ToolCall) -> ToolContext:
        """The session's context plus where this call reports its output as it runs, and
        where the plan tool shows the plan it accepted."""

        async def progress(output: str) -> None:
            await self.events.send(ToolCallProgress(call, output))

        async def show_plan(entries: Plan) -> None:
            await self.events.send(PlanUpdated(entries))

        return attrs.evolve(self.context, progress=progress, show_plan=show_plan)

    async def _execute(self, call: ToolCall, context: ToolContext) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(self.tools.names()) or "none"
            return ToolResult(f"unknown tool {call.name!r}; available tools: {known}", True)
        try:
            arguments = call.parsed_arguments()
        except ValueError as exc:
            return ToolResult(f"invalid arguments for {call.name}: {exc}", True)
        if self.approve is not None:
            refusal = await self.approve(call)
            if refusal is not None:
                return ToolResult(refusal, True)
        try:
            return await tool.call(arguments, context)
        except Exception as exc:  # a broken tool must not end the turn
            return ToolResult(f"{call.name} failed: {type(exc).__name__}: {exc}", True)

    def _cost(self) -> float | None:
        price = self.settings.price
        return None if price is None else price.cost(self._usage)

    def _settle(self) -> None:
        """Leave the conversation valid after an interruption; synchronous on purpose."""
        if self._partial_text:
            # Cut-off thinking is kept for people to read; unsigned, it never goes back.
            thought = "".join(self._partial_thought)
            reasoning = Reasoning(thought) if thought else None
            self.conversation.append(Message.assistant("".join(self._partial_text), (), reasoning))
            self._partial_text = []
        self._partial_thought = []
        for call in self.conversation.unanswered_tool_calls():
            result = self._finished_results.get(call.id, CANCELLED_RESULT)
            self.conversation.append(Message.tool(call, result))
