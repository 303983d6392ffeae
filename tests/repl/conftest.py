"""REPL harness: ``openheim`` in a pseudo-terminal (pexpect) against the fake LLM on 127.0.0.1.

The fake server runs in the test's trio loop, so every blocking pexpect call happens in a
worker thread. Matching is done on the screen text with ANSI sequences removed, because
prompt_toolkit and rich move the cursor and style freely between the words we look for.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import attrs
import pexpect
import pytest
import trio

from openheim.testing import open_fake_llm
from tests.e2e.conftest import Home

TIMEOUT = 10.0
#: prompt_toolkit's prompt as it appears on the stripped screen.
PROMPT = re.compile(r"(?m)^>")

_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, styles, erase
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: window title
    r"|\x1b[()][0-9A-Za-z]"  # charset selection
    r"|\x1b[=>78DEHM]"  # keypad modes, save/restore cursor
    r"|[\r\b]"  # carriage returns and backspaces only move the cursor
)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@attrs.define
class Screen:
    """One ``openheim`` in a pty, with an expect that reads the stripped text."""

    child: pexpect.spawn
    raw: str = ""
    position: int = 0
    closed: bool = False
    #: The prompt was seen and nothing typed since.
    at_prompt: bool = False

    @property
    def text(self) -> str:
        return strip_ansi(self.raw)

    async def expect(self, pattern: str | re.Pattern[str], within: float = TIMEOUT) -> re.Match:
        """Wait for ``pattern`` (a plain string or a regex) after the previous match."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        with trio.move_on_after(within):
            while True:
                match = regex.search(self.text, self.position)
                if match:
                    self.position = match.end()
                    return match
                if self.closed:
                    break
                await self._read()
        tail = self.text[self.position :][-3000:]
        raise AssertionError(
            f"{regex.pattern!r} not seen; the screen after the last match:\n{tail}"
        )

    async def prompt(self) -> None:
        await self.expect(PROMPT)
        self.at_prompt = True

    async def send(self, text: str) -> None:
        self.at_prompt = False
        await trio.to_thread.run_sync(self.child.send, text)

    async def line(self, text: str) -> None:
        """Type a line and Enter (a carriage return: the tty is in raw mode)."""
        await self.send(text + "\r")

    async def enter(self, text: str) -> None:
        """Type a line at the prompt: keys sent before it is up would meet a cooked tty."""
        if not self.at_prompt:
            await self.prompt()
        await self.line(text)

    async def quit(self) -> int:
        """Ctrl-D at the prompt; returns the exit code."""
        if not self.at_prompt:
            await self.prompt()
        await self.control("d")
        return await self.exit_code()

    async def control(self, key: str) -> None:
        self.at_prompt = False
        await trio.to_thread.run_sync(self.child.sendcontrol, key)

    async def exit_code(self, within: float = TIMEOUT) -> int:
        with trio.fail_after(within):
            while not self.closed:
                await self._read()
        status = await trio.to_thread.run_sync(self.child.wait)
        assert isinstance(status, int)
        return status

    async def _read(self) -> None:
        self.raw += await trio.to_thread.run_sync(self._read_blocking)

    def _read_blocking(self) -> str:
        try:
            return self.child.read_nonblocking(65536, timeout=0.1)
        except pexpect.TIMEOUT:
            return ""
        except pexpect.EOF:
            self.closed = True
            return ""


@attrs.define
class ReplHome(Home):
    screens: list[Screen] = attrs.Factory(list)

    def tty_env(self, **extra: str) -> dict[str, str]:
        """A plain xterm without colors or cursor position requests nobody would answer."""
        return self.env(
            TERM="xterm-256color", NO_COLOR="1", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="200", **extra
        )

    async def spawn(self, *args: str) -> Screen:
        command = self.command(*args)
        child = await trio.to_thread.run_sync(
            lambda: pexpect.spawn(
                command[0],
                command[1:],
                cwd=str(self.workdir),
                env=self.tty_env(),
                dimensions=(40, 200),
                encoding="utf-8",
                codec_errors="replace",
            )
        )
        screen = Screen(child)
        self.screens.append(screen)
        return screen


@pytest.fixture
async def home(tmp_path: Path) -> AsyncIterator[ReplHome]:
    async with open_fake_llm() as llm:
        home = ReplHome(tmp_path / "home", tmp_path / "work", llm)
        home.path.mkdir()
        home.workdir.mkdir()
        home.write_config()
        try:
            yield home
        finally:
            for screen in home.screens:  # a failed test leaves no openheim behind
                if screen.child.isalive():
                    await trio.to_thread.run_sync(partial(screen.child.close, force=True))
