"""The interactive face: read a line, run a slash command or a turn, render it, repeat.

The REPL talks only to sessions (through the registry); it is a renderer of AgentEvents plus a
line reader, like every other face. One SIGINT receiver lives as long as the REPL: while a turn
runs, Ctrl-C cancels that turn's scope (the session stays usable); at the prompt the terminal is
in raw mode and Ctrl-C is a key that prompt_toolkit turns into "clear the line".
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import attrs
import trio
from rich.console import Console

from openheim import __version__, render
from openheim.agent.events import TurnFinished
from openheim.config.load import load_config
from openheim.config.paths import Paths
from openheim.foundation.errors import HistoryError, OpenheimError
from openheim.foundation.models import ToolCall
from openheim.permissions import Answer
from openheim.repl.commands import (
    Blank,
    Command,
    Prompt,
    UnknownCommand,
    help_text,
    mcp_lines,
    parse_line,
)
from openheim.repl.source import LineSource, open_line_source
from openheim.repl.view import ReplView
from openheim.session import Session, SessionOptions, SessionRegistry, open_runtime
from openheim.skills import installed_skills

EXIT_OK = 0
EXIT_INTERRUPTED = 130
RECENT_SESSIONS = 20


@attrs.frozen
class ReplOptions:
    model: str | None = None
    skills: tuple[str, ...] | None = None
    resume: str | None = None
    continue_latest: bool = False
    allow_all_tools: bool = False


async def run_repl(options: ReplOptions, *, env: Mapping[str, str]) -> int:
    """Run until Ctrl-D or ``/exit``; returns the exit code. Startup errors raise."""
    paths = Paths.from_env(env)
    config = load_config(paths.config_file)
    view = ReplView(
        Console(highlight=False, markup=False, emoji=False),
        Console(stderr=True, highlight=False, markup=False, emoji=False),
    )
    cwd = Path(os.getcwd())
    async with (
        open_runtime(config, paths, env=env) as runtime,
        SessionRegistry.open(runtime) as sessions,
    ):
        session = await sessions.resume_or_create(
            SessionOptions(
                cwd=cwd,
                model=options.model,
                skills=options.skills,
                allow_all_tools=options.allow_all_tools,
            ),
            resume=options.resume,
            continue_latest=options.continue_latest,
        )
        source = open_line_source(paths.home / "repl_history")
        repl = Repl(sessions, session, view=view, source=source, cwd=cwd, options=options)
        return await repl.run()


class Repl:
    def __init__(
        self,
        sessions: SessionRegistry,
        session: Session,
        *,
        view: ReplView,
        source: LineSource,
        cwd: Path,
        options: ReplOptions,
    ) -> None:
        self.sessions = sessions
        self.view = view
        self.source = source
        self.cwd = cwd
        self.options = options
        self.session = session
        #: The session whose turn is running, for Ctrl-C; None at the prompt.
        self._turn: Session | None = None
        #: Parallel tool calls may all need an answer: one question at a time.
        self._asking = trio.Lock()
        self._exit_code = EXIT_OK

    async def run(self) -> int:
        if self.source.interactive:
            self._banner()
        async with trio.open_nursery() as nursery:
            await nursery.start(self._watch_interrupts, nursery.cancel_scope)
            await self._loop()
            nursery.cancel_scope.cancel()
        return self._exit_code

    # --- the loop -------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                line = await trio.to_thread.run_sync(
                    self.source.read_line, abandon_on_cancel=self.source.abandonable
                )
            except EOFError:
                return
            if line is None:  # Ctrl-C at the prompt cleared the line
                continue
            match parse_line(line):
                case Blank():
                    pass
                case Prompt(text=text):
                    await self._prompt(text)
                case UnknownCommand(name=name):
                    self.view.error(f"unknown command /{name}; /help lists the commands")
                case Command(name="exit"):
                    return
                case Command(name=name, argument=argument):
                    try:
                        await self._command(name, argument)
                    except OpenheimError as exc:
                        self.view.error(str(exc))

    async def _prompt(self, text: str) -> None:
        session = self.session
        events = session.subscribe()
        outcome: TurnFinished | None = None
        failure: OpenheimError | None = None
        self._turn = session
        self.view.start_turn()
        asker = partial(self._ask, session) if self.source.interactive else None
        try:
            async with session.attach(asker), trio.open_nursery() as nursery:
                nursery.start_soon(self.view.render, events)
                try:
                    outcome = await session.prompt(text)
                except OpenheimError as exc:
                    failure = exc
                nursery.cancel_scope.cancel()
        finally:
            self._turn = None
            # Every event of the turn is queued by the time prompt() returns: show the rest.
            self.view.drain(events)
            self.view.end_turn()
        if failure is not None:
            self.view.error(str(failure))
        elif outcome is not None and (note := render.stop_note(outcome)) is not None:
            self.view.note(note)

    async def _watch_interrupts(
        self, quit_scope: trio.CancelScope, task_status: trio.TaskStatus[None]
    ) -> None:
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                if self._turn is not None:
                    self._turn.cancel()
                elif self.source.abandonable:
                    # Piped input has no line to clear and no Ctrl-D: Ctrl-C is the way out.
                    self._exit_code = EXIT_INTERRUPTED
                    quit_scope.cancel()

    # --- slash commands -------------------------------------------------------------------

    async def _command(self, name: str, argument: str) -> None:
        match name:
            case "help":
                self.view.line(help_text())
            case "model":
                self._model(argument)
            case "skills":
                self._skills()
            case "new":
                await self._new()
            case "resume":
                await self._resume(argument)
            case "sessions":
                await self._sessions()
            case "mcp":
                self._mcp()
            case "compact":
                await self._compact()

    async def _compact(self) -> None:
        """Ctrl-C stops it as it stops a turn; the conversation is then unchanged."""
        session = self.session
        self._turn = session
        try:
            event = await session.compact()
        finally:
            self._turn = None
        if event is None:
            self.view.line("nothing to compact", "dim")
        else:
            self.view.line(render.compacted(event), "dim")

    def _mcp(self) -> None:
        runtime = self.sessions.runtime
        rows = runtime.mcp.describe() if runtime.mcp else []
        for line in mcp_lines(rows, str(runtime.paths.config_file)):
            self.view.line(line)

    def _model(self, spec: str) -> None:
        if spec:
            choice = self.session.set_model(spec)
            self.view.line(f"model: {choice.label} (from the next prompt on)")
            return
        config = self.sessions.runtime.config
        current = self.session.choice
        self.view.line(f"model: {current.label}")
        self.view.line("available:")
        for provider in sorted(config.providers.values(), key=lambda p: p.name):
            for model in dict.fromkeys((provider.default_model, *provider.models)):
                here = provider.name == current.provider.name and model == current.model
                self.view.line(f"  {'*' if here else ' '} {provider.name}/{model}")

    def _skills(self) -> None:
        installed = installed_skills(self.sessions.runtime.paths.skills_dir)
        active = [skill.name for skill in self.session.skills]
        self.view.line(f"active: {', '.join(active) or 'none'}")
        self.view.line(
            f"installed: {', '.join(installed) or 'none'} "
            f"(in {self.sessions.runtime.paths.skills_dir}; choose with openheim --skills a,b)"
        )

    async def _new(self) -> None:
        current = self.session
        fresh = await self.sessions.create(
            SessionOptions(
                cwd=self.cwd,
                model=current.choice.label,
                skills=tuple(skill.name for skill in current.skills),
                allow_all_tools=self.options.allow_all_tools,
            )
        )
        self._switch(fresh)
        self.view.line(f"new conversation {fresh.id} · {fresh.choice.label}")

    async def _resume(self, argument: str) -> None:
        if not argument:
            raise HistoryError("which one? /resume ID (see /sessions)")
        conversation_id = await self._find_id(argument)
        resumed = await self.sessions.load(
            conversation_id,
            SessionOptions(cwd=self.cwd, allow_all_tools=self.options.allow_all_tools),
        )
        self._switch(resumed)
        self._describe(resumed, "resumed")

    async def _find_id(self, prefix: str) -> str:
        """A unique prefix of a stored id is enough; otherwise the store judges the text."""
        ids = [meta.id for meta in await self.sessions.list()]
        if prefix in ids:
            return prefix
        matches = [known for known in ids if known.startswith(prefix)]
        if len(matches) > 1:
            raise HistoryError(f"{prefix!r} matches {len(matches)} conversations; type more")
        return matches[0] if matches else prefix

    async def _sessions(self) -> None:
        recent = await self.sessions.list(RECENT_SESSIONS)
        if not recent:
            self.view.line("no stored conversations yet")
            return
        for meta in recent:
            mark = "*" if meta.id == self.session.id else " "
            updated = meta.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
            title = render.shorten(meta.title or "(untitled)", 60)
            self.view.line(f"{mark} {meta.id}  {updated}  {title}")

    # --- sessions -------------------------------------------------------------------------

    def _switch(self, session: Session) -> None:
        previous = self.session
        self.session = session
        if previous is not session:
            self.sessions.close(previous.id)

    async def _ask(self, session: Session, call: ToolCall) -> Answer | None:
        async with self._asking:
            with self.view.paused():
                reply = await trio.to_thread.run_sync(
                    self.source.ask, render.permission_question(call)
                )
        if reply is None:  # Ctrl-C at the question: stop the whole turn, as elsewhere
            session.cancel()
            return Answer.REJECT_ONCE
        return render.parse_answer(reply)

    def _banner(self) -> None:
        self.view.line(f"openheim {__version__} · {self.session.choice.label} · {self.cwd}", "bold")
        if self.session.conversation.messages:
            self._describe(self.session, "resumed")
        self.view.line("/help for commands and keys, Ctrl-D to quit", "dim")

    def _describe(self, session: Session, what: str) -> None:
        conversation = session.conversation
        title = render.shorten(conversation.title or "(untitled)", 60)
        self.view.line(
            f"{what} {session.id}: {title} · {len(conversation.messages)} messages "
            f"· {session.choice.label}"
        )
