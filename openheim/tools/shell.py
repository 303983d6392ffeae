"""``execute_command``: run ``sh -c`` in the session's working directory, in its sandbox.

The command starts through the session's ``Sandbox`` (``openheim.sandbox.process``): its own
session and process group, stdin closed, the policy's environment (non-interactive, no
secrets) and, with a backend, the policy's view of the file system. Its whole tree is ended
when it finishes, times out or the caller is cancelled, so no background child outlives the
call and none can keep the output pipes open forever.
"""

from __future__ import annotations

import math
import signal
import subprocess
from typing import Any

import attrs
import trio

from openheim.foundation.models import ToolDefinition, ToolResult
from openheim.foundation.processes import signal_group
from openheim.sandbox.process import open_sandboxed_process
from openheim.tools.base import Progress, ToolContext, ToolKind

_READ_CHUNK = 64 * 1024
#: How long to keep reading after the group is killed; a child that left the group with
#: ``setsid`` could otherwise hold the pipes open forever.
_PIPE_GRACE_SECS = 1.0
#: What a live view of a running command gets: its last bytes, at most this often.
LIVE_TAIL_BYTES = 8 * 1024
LIVE_INTERVAL_SECS = 0.1
#: A command that is done sooner streams nothing: its result follows at once anyway.
LIVE_DELAY_SECS = 0.5


@attrs.define
class _CappedOutput:
    """Keeps the first ``limit`` bytes of a stream and counts the rest, which is read and dropped
    so the child never blocks on a full pipe."""

    limit: int
    data: bytearray = attrs.field(factory=bytearray)
    discarded: int = 0

    def feed(self, chunk: bytes) -> None:
        room = max(self.limit - len(self.data), 0)
        self.data += chunk[:room]
        self.discarded += max(len(chunk) - room, 0)

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        if self.discarded:
            if text and not text.endswith("\n"):
                text += "\n"
            text += f"[... output truncated: {self.discarded} more bytes]"
        return text


@attrs.define
class _LiveTail:
    """The last ``limit`` bytes of stdout and stderr as they interleave, for a live view; a
    new chunk sets ``changed``."""

    limit: int = LIVE_TAIL_BYTES
    data: bytearray = attrs.field(factory=bytearray)
    changed: trio.Event = attrs.field(factory=trio.Event)

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]
        self.changed.set()

    def text(self) -> str:
        # The cut may fall inside a character: drop its tail bytes at the start.
        return self.data.decode("utf-8", errors="replace").lstrip("\ufffd")


async def _report(tail: _LiveTail, progress: Progress) -> None:
    """Send the tail whenever it changed, at most every ``LIVE_INTERVAL_SECS``, from
    ``LIVE_DELAY_SECS`` on."""
    await trio.sleep(LIVE_DELAY_SECS)
    while True:
        await tail.changed.wait()
        tail.changed = trio.Event()
        await progress(tail.text())
        await trio.sleep(LIVE_INTERVAL_SECS)


@attrs.frozen
class CommandOutcome:
    """What a finished (or stopped) command left behind."""

    stdout: str
    stderr: str
    returncode: int | None
    timed_out: bool = False
    timeout: float = 0.0
    #: Reading stopped because a process outside the group still held the pipes open.
    pipes_held: bool = False


def format_outcome(outcome: CommandOutcome) -> ToolResult:
    """Stdout, then ``[stderr]``, then a status line; an error unless it exited 0."""
    stdout, stderr = outcome.stdout.rstrip("\n"), outcome.stderr.rstrip("\n")
    parts = [stdout] if stdout else []
    if stderr:
        parts.append("[stderr]\n" + stderr)
    if outcome.pipes_held:
        parts.append("[output cut: a detached background process kept stdout/stderr open]")
    code = outcome.returncode
    if outcome.timed_out:
        parts.append(f"[timed out after {outcome.timeout:g} s; process group killed]")
    elif code is not None and code < 0:
        parts.append(f"[killed by signal {_signal_name(-code)}]")
    elif code is not None and 128 < code < 128 + signal.NSIG:
        # A shell, and a sandbox's init, report a child killed by signal N as 128 + N.
        parts.append(f"[exit code {code} (128 + {_signal_name(code - 128)})]")
    elif code != 0:
        parts.append(f"[exit code {code}]")
    content = "\n".join(parts) if parts else "(no output)"
    return ToolResult(content=content, is_error=outcome.timed_out or code != 0)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


async def _drain(stream: trio.abc.ReceiveStream, sink: _CappedOutput, tail: _LiveTail) -> None:
    while chunk := await stream.receive_some(_READ_CHUNK):
        sink.feed(chunk)
        tail.feed(chunk)


class ExecuteCommandTool:
    """The ``execute_command`` tool. See the module docstring for the process discipline."""

    kind = ToolKind.EXECUTE

    def __init__(
        self,
        default_timeout: float = 120.0,
        max_timeout: float = 600,
        output_limit: int = 64 * 1024,
    ) -> None:
        if not 0 < default_timeout <= max_timeout:
            raise ValueError("need 0 < default_timeout <= max_timeout")
        if output_limit < 0:
            raise ValueError("output_limit must not be negative")
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout
        self.output_limit = output_limit
        self._definition = ToolDefinition(
            name="execute_command",
            description=self._describe(),
            parameters={
                "type": "object",
                "properties": {
                    "command": {
                        "type": "string",
                        "description": "Shell command line, run as `sh -c <command>`.",
                    },
                    "timeout_secs": {
                        "type": "number",
                        "description": (
                            f"Seconds before the command is killed (default {default_timeout:g}, "
                            f"max {max_timeout:g})."
                        ),
                    },
                },
                "required": ["command"],
            },
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    def _describe(self) -> str:
        return (
            "Run a shell command with `sh -c` in the working directory and return its stdout, "
            "stderr and exit code. It runs non-interactively: stdin is closed and there is no "
            "terminal, so anything that prompts (editors, pagers, passwords, confirmations) "
            "fails instead of waiting; use non-interactive flags such as `-y` or `--no-edit`. "
            f"Killed after {self.default_timeout:g} s unless `timeout_secs` says otherwise "
            f"(max {self.max_timeout:g} s). Each of stdout and stderr is cut at "
            f"{self.output_limit} bytes, so filter large output with head, tail or grep. "
            "Background processes (`&`) are killed when the command returns."
        )

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        command = arguments.get("command")
        if not isinstance(command, str) or not command.strip():
            return ToolResult("Missing 'command' argument: a non-empty string", is_error=True)
        timeout = self._timeout(arguments.get("timeout_secs"))
        if timeout is None:
            return ToolResult("'timeout_secs' must be a positive number of seconds", is_error=True)
        if not await trio.Path(context.cwd).is_dir():
            return ToolResult(
                f"Working directory {context.cwd} does not exist or is not a directory",
                is_error=True,
            )
        try:
            outcome = await self.run(command, context, timeout)
        except OSError as exc:
            return ToolResult(f"Could not start the command: {exc}", is_error=True)
        result = format_outcome(outcome)
        quota = context.sandbox.quota
        if quota is not None:
            # Commands write by themselves: measure after each, and say so when over.
            used = await trio.to_thread.run_sync(quota.measure)
            if used > quota.limit:
                note = (
                    f"[the workspace now holds {used} bytes, over its quota of {quota.limit}: "
                    "delete files; writes fail until it is under]"
                )
                result = ToolResult(f"{result.content}\n{note}", is_error=True)
        return result

    def _timeout(self, value: object) -> float | None:
        """The effective timeout, capped at ``max_timeout``; None if ``value`` is unusable."""
        if value is None:
            return self.default_timeout
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if math.isnan(value) or value <= 0:
            return None
        return min(float(value), self.max_timeout)

    async def run(self, command: str, context: ToolContext, time_limit: float) -> CommandOutcome:
        """Run ``command`` to completion or timeout; on cancellation kill the group and re-raise.

        Raises ``OSError`` if the shell cannot be started.
        """
        stdout, stderr = _CappedOutput(self.output_limit), _CappedOutput(self.output_limit)
        tail = _LiveTail()
        async with trio.open_nursery() as live:
            if context.progress is not None:
                live.start_soon(_report, tail, context.progress)
            try:
                return await self._run(command, context, time_limit, stdout, stderr, tail)
            finally:
                live.cancel_scope.cancel()

    async def _run(
        self,
        command: str,
        context: ToolContext,
        time_limit: float,
        stdout: _CappedOutput,
        stderr: _CappedOutput,
        tail: _LiveTail,
    ) -> CommandOutcome:
        shell_exited = False
        reading = trio.CancelScope()
        async with open_sandboxed_process(
            context.sandbox,
            ["sh", "-c", command],
            context.cwd,
            extra_env=context.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            try:
                with trio.move_on_after(time_limit) as deadline, reading:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_drain, process.stdout, stdout, tail)
                        nursery.start_soon(_drain, process.stderr, stderr, tail)
                        await process.wait()
                        shell_exited = True
                        # Leftover background children would keep the pipes open: end them,
                        # and stop reading soon even if some escaped the group.
                        signal_group(process.pid)
                        reading.deadline = trio.current_time() + _PIPE_GRACE_SECS
            finally:
                with trio.CancelScope(shield=True):
                    await process.stdout.aclose()
                    await process.stderr.aclose()
        return CommandOutcome(
            stdout=stdout.text(),
            stderr=stderr.text(),
            returncode=process.returncode,
            timed_out=deadline.cancelled_caught and not shell_exited,
            timeout=time_limit,
            pipes_held=shell_exited and (reading.cancelled_caught or deadline.cancelled_caught),
        )
