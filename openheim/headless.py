"""The ``openheim run`` face: one prompt, answer on stdout, tool activity on stderr."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import attrs
import trio

from openheim.agent.events import (
    AgentEvent,
    MessageChunk,
    ProviderRetrying,
    StopReason,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from openheim.agent.loop import Turn, TurnSettings
from openheim.agent.prompt import build_system_prompt
from openheim.config.load import load_config
from openheim.config.model import Config
from openheim.config.paths import Paths
from openheim.config.resolve import ModelChoice, resolve_api_key, resolve_model
from openheim.errors import HistoryError, OpenheimError
from openheim.models import Conversation
from openheim.providers.client import open_provider
from openheim.skills import load_skills
from openheim.store.files import FileHistoryStore
from openheim.tools.base import ToolContext, ToolRegistry
from openheim.tools.builtin import builtin_tools

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_MAX_ITERATIONS = 3
EXIT_CANCELLED = 130
EVENT_BUFFER = 64


@attrs.frozen
class RunOptions:
    prompt: str
    model: str | None = None
    skills: tuple[str, ...] | None = None
    resume: str | None = None
    continue_latest: bool = False
    max_iterations: int | None = None


@attrs.frozen
class Terminal:
    """Where the face writes: the answer to ``out``, everything else to ``err``."""

    out: TextIO = attrs.field(factory=lambda: sys.stdout)
    err: TextIO = attrs.field(factory=lambda: sys.stderr)

    def answer(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()


async def run_headless(options: RunOptions, *, env: Mapping[str, str], terminal: Terminal) -> int:
    paths = Paths.from_env(env)
    config = load_config(paths.config_file)
    store = FileHistoryStore(paths.history_dir)
    conversation = await _open_conversation(store, options)
    choice = _choose_model(config, options, conversation)
    skill_names = options.skills if options.skills is not None else conversation.skills
    skills = load_skills(paths.skills_dir, skill_names)
    api_key = resolve_api_key(config.path, choice.provider, env)
    cwd = os.getcwd()
    conversation.model, conversation.provider = choice.model, choice.provider.name
    conversation.skills, conversation.cwd = tuple(skill_names), cwd
    tools = ToolRegistry(
        builtin_tools(
            command_timeout=config.tools.command_timeout_secs,
            output_limit=config.tools.output_limit_bytes,
            read_limit=config.tools.read_limit_bytes,
        )
    )
    settings = TurnSettings(
        model=choice.model,
        max_iterations=options.max_iterations or config.max_iterations,
        max_tokens=choice.provider.max_tokens,
        price=choice.provider.prices.get(choice.model),
        recover_text_tool_calls=choice.provider.recover_text_tool_calls,
        system_prompt=build_system_prompt(cwd=cwd, skills=skills, override=config.system_prompt),
    )
    send, receive = trio.open_memory_channel[AgentEvent](EVENT_BUFFER)
    renderer = _Renderer(terminal)
    failure: OpenheimError | None = None
    outcome: TurnFinished | None = None
    async with open_provider(choice.provider, api_key) as provider, trio.open_nursery() as nursery:
        turn = Turn(
            conversation,
            options.prompt,
            provider=provider,
            tools=tools,
            context=ToolContext(cwd=Path(cwd), session_id=conversation.id),
            settings=settings,
            events=send,
        )
        nursery.start_soon(renderer.render, receive)
        nursery.start_soon(_cancel_on_signals, turn, terminal)
        try:
            async with send:
                outcome = await turn.run()
        except OpenheimError as exc:
            failure = exc
        renderer.end_answer()
        try:
            await store.save(conversation)
        except HistoryError as exc:
            failure = failure or exc
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    assert outcome is not None
    return _exit_code(outcome, terminal, conversation)


async def _open_conversation(store: FileHistoryStore, options: RunOptions) -> Conversation:
    if options.resume:
        return await store.load(options.resume)
    if options.continue_latest:
        latest = await store.list(limit=1)
        if not latest:
            raise HistoryError(f"no conversation to continue in {store.directory}")
        return await store.load(latest[0].id)
    return Conversation(id=str(uuid.uuid4()))


def _choose_model(config: Config, options: RunOptions, conversation: Conversation) -> ModelChoice:
    """``--model`` wins; a resumed conversation keeps its provider and model."""
    if options.model or conversation.provider is None:
        return resolve_model(config, options.model)
    return resolve_model(config, conversation.model, provider=conversation.provider)


async def _cancel_on_signals(turn: Turn, terminal: Terminal) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            terminal.note(f"\n{signal.Signals(signum).name}: stopping the turn")
            turn.cancel()


def _exit_code(outcome: TurnFinished, terminal: Terminal, conversation: Conversation) -> int:
    resume = f"openheim run --resume {conversation.id} ..."
    match outcome.stop_reason:
        case StopReason.CANCELLED:
            terminal.note(f"cancelled; the conversation is saved, resume with: {resume}")
            return EXIT_CANCELLED
        case StopReason.MAX_TURN_REQUESTS:
            terminal.note(
                f"stopped: max iterations reached ({outcome.iterations}); continue with: {resume}"
            )
            return EXIT_MAX_ITERATIONS
        case StopReason.MAX_TOKENS:
            terminal.note("note: the answer was cut off at the provider's output token limit")
        case StopReason.REFUSAL:
            terminal.note("note: the provider refused to answer")
        case _:
            pass
    return EXIT_OK


class _Renderer:
    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self._open_line = False

    async def render(self, events: trio.MemoryReceiveChannel[AgentEvent]) -> None:
        async with events:
            async for event in events:
                self.show(event)

    def end_answer(self) -> None:
        if self._open_line:
            self.terminal.answer("\n")
            self._open_line = False

    def show(self, event: AgentEvent) -> None:
        match event:
            case MessageChunk(text=text):
                self.terminal.answer(text)
                self._open_line = not text.endswith("\n")
            case ToolCallStarted(call=call):
                self.end_answer()
                self.terminal.note(f"→ {call.name} {_shorten(call.arguments)}")
            case ToolCallFinished(call=call, result=result, duration=duration):
                mark = "✗" if result.is_error else "✓"
                first = result.content.strip().splitlines()[0] if result.content.strip() else ""
                detail = f": {_shorten(first)}" if result.is_error else ""
                self.terminal.note(f"{mark} {call.name} ({duration:.2f} s){detail}")
            case ProviderRetrying(message=message):
                self.terminal.note(f"⟳ {message}")
            case TurnFinished():
                self.end_answer()


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
