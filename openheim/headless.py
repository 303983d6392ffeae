"""The ``openheim run`` face: one prompt, answer on stdout, tool activity on stderr."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import attrs
import trio

from openheim import render
from openheim.agent.events import (
    AgentEvent,
    Compacted,
    McpStartup,
    MessageChunk,
    PlanUpdated,
    ProviderRetrying,
    StopReason,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from openheim.config.load import load_config
from openheim.config.paths import Paths
from openheim.foundation.errors import OpenheimError
from openheim.foundation.models import Conversation, ToolCall
from openheim.permissions import Answer
from openheim.session import Session, SessionOptions, SessionRegistry, open_runtime

EXIT_OK = 0
EXIT_MAX_ITERATIONS = 3
EXIT_CANCELLED = 130


@attrs.frozen
class RunOptions:
    prompt: str
    model: str | None = None
    skills: tuple[str, ...] | None = None
    resume: str | None = None
    continue_latest: bool = False
    max_iterations: int | None = None
    allow_all_tools: bool = False


@attrs.frozen
class Terminal:
    """Where the face writes: the answer to ``out``, everything else to ``err``."""

    out: TextIO = attrs.field(factory=lambda: sys.stdout)
    err: TextIO = attrs.field(factory=lambda: sys.stderr)
    inp: TextIO | None = attrs.field(factory=lambda: sys.stdin if sys.stdin.isatty() else None)

    def answer(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    async def ask(self, call: ToolCall) -> Answer | None:
        """Ask on the terminal; without one (``inp`` is None) nobody can answer."""
        if self.inp is None:
            return None
        self.err.write(render.permission_question(call))
        self.err.flush()
        line = await trio.to_thread.run_sync(self.inp.readline, abandon_on_cancel=True)
        return render.parse_answer(line)


async def run_headless(options: RunOptions, *, env: Mapping[str, str], terminal: Terminal) -> int:
    paths = Paths.from_env(env)
    config = load_config(paths.config_file)
    session_options = SessionOptions(
        cwd=Path(os.getcwd()),
        model=options.model,
        skills=options.skills,
        max_iterations=options.max_iterations,
        allow_all_tools=options.allow_all_tools,
    )
    async with (
        open_runtime(config, paths, env=env) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.resume_or_create(
            session_options,
            resume=options.resume,
            continue_latest=options.continue_latest,
        )
        renderer = _Renderer(terminal)
        events = session.subscribe()
        failure: OpenheimError | None = None
        outcome: TurnFinished | None = None
        async with session.attach(terminal.ask), trio.open_nursery() as nursery:
            nursery.start_soon(renderer.render, events)
            nursery.start_soon(_cancel_on_signals, session, terminal)
            try:
                outcome = await session.prompt(options.prompt)
            except OpenheimError as exc:
                failure = exc
            nursery.cancel_scope.cancel()
        # Every event of the turn is queued by the time prompt() returns: show the rest.
        renderer.drain(events)
        renderer.end_answer()
    if failure is not None:
        raise failure
    assert outcome is not None
    return _exit_code(outcome, terminal, session.conversation)


async def _cancel_on_signals(session: Session, terminal: Terminal) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            terminal.note(f"\n{signal.Signals(signum).name}: stopping the turn")
            session.cancel()


def _exit_code(outcome: TurnFinished, terminal: Terminal, conversation: Conversation) -> int:
    note = render.stop_note(outcome, resume=f"openheim run --resume {conversation.id} ...")
    if note is not None:
        terminal.note(note)
    match outcome.stop_reason:
        case StopReason.CANCELLED:
            return EXIT_CANCELLED
        case StopReason.MAX_TURN_REQUESTS:
            return EXIT_MAX_ITERATIONS
        case _:
            return EXIT_OK


class _Renderer:
    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self._open_line = False

    async def render(self, events: trio.MemoryReceiveChannel[AgentEvent]) -> None:
        await render.show_events(events, self.show)

    def drain(self, events: trio.MemoryReceiveChannel[AgentEvent]) -> None:
        render.drain_events(events, self.show)

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
                self.terminal.note(render.tool_started(call))
            case ToolCallFinished(result=result):
                self.terminal.note(render.tool_finished(event))
                for line in render.diff_lines(result):
                    self.terminal.note(line)
            case PlanUpdated(entries=entries):
                self.end_answer()
                for line, _style in render.plan_lines(entries):
                    self.terminal.note(line)
            case ProviderRetrying():
                self.terminal.note(render.retrying(event))
            case Compacted():
                self.end_answer()
                self.terminal.note(render.compacted(event))
            case McpStartup():
                self.end_answer()
                self.terminal.note(render.mcp_startup(event))
            case TurnFinished():
                self.end_answer()
