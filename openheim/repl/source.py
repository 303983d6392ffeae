"""Where the REPL's lines come from: prompt_toolkit on a terminal, plain ``readline`` otherwise.

Both are blocking and meant for ``trio.to_thread.run_sync``: prompt_toolkit runs its own
asyncio loop in that worker thread, never in ours. On a terminal, prompt_toolkit holds the tty
in raw mode while it reads, so Ctrl-C there is a key (it clears the line), not a signal; while
a turn runs the tty is back in cooked mode and Ctrl-C reaches trio as SIGINT.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from openheim.foundation.fsutil import PRIVATE_FILE_MODE, make_folders
from openheim.repl.commands import COMMANDS, continues

if TYPE_CHECKING:
    from prompt_toolkit.key_binding import KeyBindings

PROMPT = "> "


class LineSource(Protocol):
    #: True when a person types at a terminal (banner, prompts, permission questions).
    interactive: bool
    #: True when reads may be abandoned mid-line (nothing to restore afterwards).
    abandonable: bool

    def read_line(self) -> str | None:
        """The next input, continuation lines joined; ``None`` when the user cleared it.

        Raises ``EOFError`` at the end of input (Ctrl-D).
        """
        ...

    def ask(self, question: str) -> str | None:
        """A one-line answer; ``None`` when the user pressed Ctrl-C instead."""
        ...


class TerminalSource:
    """prompt_toolkit: line editing, persistent history, multi-line input, Tab for commands."""

    interactive = True
    abandonable = False

    def __init__(self, history_file: Path) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import WordCompleter
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        self._session: PromptSession[str] = PromptSession(
            history=FileHistory(str(history_file)),
            key_bindings=_key_bindings(),
            completer=WordCompleter([f"/{name}" for name in COMMANDS], sentence=True),
            complete_while_typing=False,
            prompt_continuation="… ",
        )
        self._questions: PromptSession[str] = PromptSession(history=InMemoryHistory())

    def read_line(self) -> str | None:
        try:
            return self._session.prompt(PROMPT)
        except KeyboardInterrupt:
            return None

    def ask(self, question: str) -> str | None:
        try:
            return self._questions.prompt(question)
        except KeyboardInterrupt:
            return None
        except EOFError:
            return ""


class StreamSource:
    """Plain lines from a pipe or file (or a terminal whose output is redirected).

    A line ending in ``\\`` continues on the next one, as at the terminal.
    """

    abandonable = True

    def __init__(self, stream: TextIO, *, prompts: TextIO | None = None) -> None:
        self._stream = stream
        #: Where to write prompts and questions when a person is typing; None for a pipe.
        self._prompts = prompts
        self.interactive = prompts is not None

    def read_line(self) -> str | None:
        parts: list[str] = []
        while True:
            self._show(PROMPT if not parts else "… ")
            raw = self._stream.readline()
            if not raw:
                if parts:
                    return "\n".join(parts)
                raise EOFError
            text, more = continues(raw.rstrip("\r\n"))
            parts.append(text)
            if not more:
                return "\n".join(parts)

    def ask(self, question: str) -> str | None:
        self._show(question)
        return self._stream.readline()

    def _show(self, text: str) -> None:
        if self._prompts is not None:
            self._prompts.write(text)
            self._prompts.flush()


def open_line_source(history_file: Path) -> LineSource:
    """prompt_toolkit only when both ends are a terminal; it cannot edit a line it can't draw."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        # What was typed is as private as the conversations: create it 0600 before
        # prompt_toolkit opens it with the umask's mode.
        make_folders(history_file.parent, private=True)
        os.close(os.open(history_file, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE))
        return TerminalSource(history_file)
    return StreamSource(sys.stdin, prompts=sys.stderr if sys.stdin.isatty() else None)


def _key_bindings() -> KeyBindings:
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.document.is_cursor_at_the_end and continues(buffer.text)[1]:
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    return bindings
