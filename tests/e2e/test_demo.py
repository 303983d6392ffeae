"""`make demo` must keep working: it is the README's offline first run."""

from __future__ import annotations

import subprocess
import sys

import trio


async def test_demo_runs_a_tool_and_saves_the_conversation() -> None:
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, "-m", "openheim.testing.demo"],
            capture_stdout=True,
            capture_stderr=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, stderr
    assert "Let me look around first." in stdout
    assert "exit code 0; saved: ['" in stdout
    assert "✓ execute_command" in stderr
