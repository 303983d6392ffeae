"""How the REPL draws: streamed answer text, tool activity lines and a spinner, with rich.

All drawing happens on the trio thread; the only other writer is prompt_toolkit, which runs
while the view is idle or ``paused()``. The spinner is transient and only drawn on a real
terminal, so piped output holds nothing but the lines themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio
from rich.console import Console
from rich.status import Status
from rich.text import Text

from openheim import render
from openheim.agent.events import (
    AgentEvent,
    Compacted,
    McpStartup,
    MessageChunk,
    PlanUpdated,
    ProviderRetrying,
    ThoughtChunk,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)

THINKING = "thinking…"


class ReplView:
    def __init__(self, out: Console, err: Console) -> None:
        self.out = out
        self.err = err
        self._status: Status | None = None
        self._open_line = False
        #: The last text drawn was thinking (dimmed), so an answer must start a new line.
        self._in_thought = False
        #: Tool calls started and not finished yet, by call id → tool name.
        self._running: dict[str, str] = {}
        self._paused = False

    # --- plain lines ----------------------------------------------------------------------

    def line(self, text: str, style: str = "") -> None:
        self._settle()
        self.out.print(Text(text, style=style), soft_wrap=True)

    def note(self, text: str) -> None:
        self.line(text, "yellow")

    def error(self, text: str) -> None:
        """One red line on stderr: the REPL goes on after it."""
        self._settle()
        self.err.print(Text(f"error: {text}", style="red"), soft_wrap=True)

    # --- a turn ---------------------------------------------------------------------------

    def start_turn(self) -> None:
        self._running.clear()
        self._spin(THINKING)

    async def render(self, events: trio.MemoryReceiveChannel[AgentEvent]) -> None:
        await render.show_events(events, self.show)

    def drain(self, events: trio.MemoryReceiveChannel[AgentEvent]) -> None:
        render.drain_events(events, self.show)

    def end_turn(self) -> None:
        self._running.clear()
        self._settle()

    def show(self, event: AgentEvent) -> None:
        match event:
            case MessageChunk(text=text):
                self._stop_spinner()
                if self._in_thought:  # the answer starts on a line of its own
                    self._settle()
                self._in_thought = False
                self.out.print(Text(text), end="", soft_wrap=True)
                self._open_line = not text.endswith("\n")
            case ThoughtChunk(text=text):
                self._stop_spinner()
                self._in_thought = True
                self.out.print(Text(text, style="dim italic"), end="", soft_wrap=True)
                self._open_line = not text.endswith("\n")
            case ToolCallStarted(call=call):
                self.line(render.tool_started(call), "cyan")
                self._running[call.id] = call.name
                self._spin(self._running_label())
            case ToolCallFinished(call=call, result=result):
                self.line(render.tool_finished(event), "red" if result.is_error else "green")
                for line in render.diff_lines(result):
                    self.line(line, render.diff_style(line))
                self._running.pop(call.id, None)
                # With every tool done the model is asked again: back to thinking.
                self._spin(self._running_label() if self._running else THINKING)
            case PlanUpdated(entries=entries):
                for line, style in render.plan_lines(entries):
                    self.line(line, style)
                self._spin(self._running_label() if self._running else THINKING)
            case ProviderRetrying():
                self.line(render.retrying(event), "yellow")
                self._spin(THINKING)
            case Compacted():
                self.line(render.compacted(event), "dim")
            case McpStartup():
                failed = any(s.name == event.changed and s.state == "failed" for s in event.servers)
                self.line(render.mcp_startup(event), "yellow" if failed else "dim")
                starting = [s.name for s in event.servers if s.state == "starting"]
                self._spin(f"starting {', '.join(starting)}…" if starting else THINKING)
            case TurnFinished():
                self.end_turn()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No spinner while someone else (a permission question) owns the terminal."""
        self._settle()
        self._paused = True
        try:
            yield
        finally:
            self._paused = False
            if self._running:
                self._spin(self._running_label())

    # --- internals ------------------------------------------------------------------------

    def _running_label(self) -> str:
        names = sorted(set(self._running.values()))
        if len(self._running) == 1:
            return f"running {names[0]}…"
        return f"running {len(self._running)} tools ({', '.join(names)})…"

    def _settle(self) -> None:
        """Stop the spinner and finish a half-written answer line before anything else."""
        self._stop_spinner()
        self._in_thought = False
        if self._open_line:
            self.out.print()
            self._open_line = False

    def _spin(self, label: str) -> None:
        if self._paused or not self.out.is_terminal or self.out.is_dumb_terminal:
            return
        if self._status is None:
            self._status = Status(Text(label, style="dim"), console=self.out, spinner="dots")
            self._status.start()
        else:
            self._status.update(Text(label, style="dim"))

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
