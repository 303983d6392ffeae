"""execute_command against real processes: output, limits, timeouts, cancellation, cleanup."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import trio

from openheim.foundation.models import ToolResult
from openheim.tools.base import ToolContext
from openheim.tools.shell import ExecuteCommandTool
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process checks read /proc"
)


def live_group_members(pgid: int) -> list[int]:
    """Pids in process group ``pgid`` that are still running (zombies do not count: in a
    container whose init never reaps, killed orphans stay zombies)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry))
    return members


async def assert_group_gone(pgid: int) -> None:
    """SIGKILL is delivered asynchronously: let the kernel finish the job, then check."""
    await wait_until(lambda: not live_group_members(pgid), what=f"process group {pgid} to end")
    assert live_group_members(pgid) == []


async def run(
    command: str,
    cwd: Path,
    *,
    tool: ExecuteCommandTool | None = None,
    env: dict[str, str] | None = None,
    **extra: object,
) -> ToolResult:
    tool = tool or ExecuteCommandTool()
    context = ToolContext(cwd=cwd, env=env or {})
    return await tool.call({"command": command, **extra}, context)


async def test_definition() -> None:
    definition = ExecuteCommandTool().definition
    assert definition.name == "execute_command"
    assert definition.parameters["required"] == ["command"]
    assert "sh -c" in definition.description


async def test_echo_to_stdout(tmp_path: Path) -> None:
    result = await run("echo hello", tmp_path)
    assert result == ToolResult("hello")


async def test_no_output(tmp_path: Path) -> None:
    assert await run("true", tmp_path) == ToolResult("(no output)")
    assert await run("echo; echo >&2", tmp_path) == ToolResult("(no output)")


async def test_stderr_and_exit_code(tmp_path: Path) -> None:
    result = await run("echo out; echo err >&2; exit 3", tmp_path)
    assert result == ToolResult("out\n[stderr]\nerr\n[exit code 3]", is_error=True)


async def test_stderr_on_success_is_kept(tmp_path: Path) -> None:
    result = await run("echo warning >&2", tmp_path)
    assert result == ToolResult("[stderr]\nwarning")


async def test_killed_by_signal(tmp_path: Path) -> None:
    result = await run("kill -9 $$", tmp_path)
    assert result == ToolResult("[killed by signal SIGKILL]", is_error=True)


async def test_undecodable_output_is_replaced(tmp_path: Path) -> None:
    result = await run(r"printf 'a\377b'", tmp_path)
    assert result.content == "a\ufffdb"


async def test_output_over_limit_is_truncated_without_blocking(tmp_path: Path) -> None:
    tool = ExecuteCommandTool(output_limit=1000)
    start = trio.current_time()
    result = await run(r"head -c 5000000 /dev/zero | tr '\0' a; echo tail >&2", tmp_path, tool=tool)
    assert trio.current_time() - start < 2
    assert not result.is_error
    stdout, stderr = result.content.split("\n[stderr]\n")
    assert stdout == "a" * 1000 + "\n[... output truncated: 4999000 more bytes]"
    assert stderr == "tail"


async def test_timeout_kills_process_group(tmp_path: Path) -> None:
    start = trio.current_time()
    result = await run("echo $$; sleep 30 & sleep 30", tmp_path, timeout_secs=0.5)
    assert trio.current_time() - start < 2
    assert result.is_error
    pgid_line, status = result.content.split("\n")
    assert status == "[timed out after 0.5 s; process group killed]"
    await assert_group_gone(int(pgid_line))


async def test_timeout_is_capped(tmp_path: Path) -> None:
    tool = ExecuteCommandTool(default_timeout=0.2, max_timeout=0.3)
    result = await run("sleep 30", tmp_path, tool=tool, timeout_secs=1000)
    assert result == ToolResult("[timed out after 0.3 s; process group killed]", is_error=True)


async def test_cancellation_kills_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pgid"
    results: list[ToolResult] = []
    start = trio.current_time()
    with trio.move_on_after(0.5) as scope:
        results.append(await run(f"echo $$ > {pidfile}; sleep 30 & sleep 30", tmp_path))
    assert scope.cancelled_caught
    assert results == []
    assert trio.current_time() - start < 2
    await assert_group_gone(int(pidfile.read_text()))


async def test_background_child_does_not_hang_and_is_killed(tmp_path: Path) -> None:
    start = trio.current_time()
    result = await run("sleep 30 & echo $$; echo done", tmp_path)
    assert trio.current_time() - start < 2
    pgid_line, done = result.content.split("\n")
    assert done == "done"
    assert not result.is_error
    await assert_group_gone(int(pgid_line))


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid(1)")
async def test_child_escaping_the_group_cannot_hold_the_pipes(tmp_path: Path) -> None:
    pidfile = tmp_path / "escaped"
    command = (
        f"setsid sh -c 'echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec sleep 30' & "
        f"while [ ! -e {pidfile} ]; do sleep 0.01; done; echo started"
    )
    start = trio.current_time()
    try:
        result = await run(command, tmp_path)
        assert trio.current_time() - start < 2
        assert result == ToolResult(
            "started\n[output cut: a detached background process kept stdout/stderr open]"
        )
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), 9)


async def test_stdin_is_closed(tmp_path: Path) -> None:
    start = trio.current_time()
    assert await run("cat", tmp_path) == ToolResult("(no output)")
    assert await run('read line; echo "rc=$?"', tmp_path) == ToolResult("rc=1")
    assert trio.current_time() - start < 2


async def test_noninteractive_environment(tmp_path: Path) -> None:
    result = await run('echo "$GIT_TERMINAL_PROMPT $PAGER $GIT_EDITOR $FOO"', tmp_path)
    assert result.content == "0 cat true "
    result = await run('echo "$FOO $PATH"', tmp_path, env={"FOO": "bar"})
    assert result.content == f"bar {os.environ['PATH']}"


async def test_no_controlling_terminal(tmp_path: Path) -> None:
    result = await run("(: < /dev/tty) 2>/dev/null && echo tty || echo none", tmp_path)
    assert result.content == "none"


async def test_cwd_is_respected(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("x")
    result = await run("pwd; ls", tmp_path)
    assert result.content == f"{await trio.Path(tmp_path).resolve()}\nmarker.txt"


async def test_missing_cwd_is_an_error(tmp_path: Path) -> None:
    result = await run("true", tmp_path / "nope")
    assert result.is_error
    assert "does not exist" in result.content


@pytest.mark.parametrize("arguments", [{}, {"command": 42}, {"command": "  "}])
async def test_missing_command(tmp_path: Path, arguments: dict[str, object]) -> None:
    result = await ExecuteCommandTool().call(arguments, ToolContext(cwd=tmp_path))
    assert result == ToolResult("Missing 'command' argument: a non-empty string", is_error=True)


@pytest.mark.parametrize("seconds", [0, -1, "5", True, float("nan")])
async def test_bad_timeout(tmp_path: Path, seconds: object) -> None:
    result = await run("true", tmp_path, timeout_secs=seconds)
    assert result.is_error
    assert "timeout_secs" in result.content
