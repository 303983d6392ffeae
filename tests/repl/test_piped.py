"""The REPL with piped stdin: line by line, no prompts, no banner, no questions asked."""

from __future__ import annotations

import signal
import subprocess
import sys

import trio

from openheim.testing import HttpError, Reply
from tests.e2e.conftest import Result, request_messages
from tests.repl.conftest import ReplHome


async def run_piped(home: ReplHome, stdin: str, *args: str) -> Result:
    with trio.fail_after(20):
        done = await trio.run_process(
            home.command(*args),
            cwd=home.workdir,
            env=home.env(),
            stdin=stdin.encode(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


async def test_piped_lines_run_commands_and_prompts_in_order(home: ReplHome) -> None:
    home.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo piped"}),
            Reply.text("first answer"),
            Reply.text("second answer"),
        ]
    )
    script = "run echo\n\n/model other-model\nline one \\\nline two\n/nope\n"
    result = await run_piped(home, script, "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        '→ execute_command {"command": "echo piped"}',
        result.stdout.splitlines()[1],
        "first answer",
        "model: fake/other-model (from the next prompt on)",
        "second answer",
    ]
    assert result.stdout.splitlines()[1].startswith("✓ execute_command (")
    assert result.stderr == "error: unknown command /nope; /help lists the commands\n"
    assert home.llm.requests[1].body["model"] == "fake-model"
    assert home.llm.requests[2].body["model"] == "other-model"
    assert request_messages(home.llm, 2)[-1] == {"role": "user", "content": "line one \nline two"}
    assert not (home.path / "repl_history").exists()  # prompt_toolkit was never started


async def test_continue_resumes_the_latest_and_errors_keep_the_repl_going(home: ReplHome) -> None:
    home.llm.script.extend([Reply.text("remembered"), Reply.text("again")])
    assert (await run_piped(home, "remember 42\n")).returncode == 0
    conversation_id = home.only_history()["meta"]["id"]

    result = await run_piped(home, "/model nope\nwhat number?\n", "--continue")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "again\n"
    assert result.stderr.startswith("error: ") and "'nope' is not listed" in result.stderr
    assert [m["content"] for m in request_messages(home.llm, 1)] == [
        "remember 42",
        "remembered",
        "what number?",
    ]
    assert [f.stem for f in home.history_files()] == [conversation_id]


async def test_ask_policy_with_piped_input_denies(home: ReplHome) -> None:
    config = home.path / "config.toml"
    config.write_text(config.read_text() + '\n[permissions]\nexecute_command = "ask"\n')
    home.llm.script.extend(
        [Reply.tool_call("execute_command", {"command": "touch ran"}), Reply.text("ok")]
    )
    result = await run_piped(home, "y\n")
    assert result.returncode == 0, result.stderr
    assert "nobody was available to approve execute_command" in result.stdout
    assert not (home.workdir / "ran").exists()


async def test_startup_errors_are_one_line(home: ReplHome) -> None:
    result = await run_piped(home, "", "--continue")
    assert result.returncode == 1
    assert result.stderr.startswith("openheim: error: no conversation to continue")
    result = await run_piped(home, "", "--skills", "missing")
    assert result.returncode == 1
    assert result.stderr.startswith("openheim: error: unknown skill 'missing'")
    result = await run_piped(home, "", "--resume", "x", "--continue")
    assert result.returncode == 1 and "cannot be used together" in result.stderr


async def test_repl_options_before_a_command_are_refused(home: ReplHome) -> None:
    result = await run_piped(home, "", "--model", "other-model", "run", "hi")
    assert result.returncode == 1
    assert "--model before a command applies to the REPL only" in result.stderr
    assert home.llm.requests == []


def test_help_and_run_do_not_load_the_repl_libraries() -> None:
    """Startup time: ``--help`` loads neither library, ``run`` not the REPL or prompt_toolkit.

    (httpx imports rich for its own command-line client whenever rich is installed, so the
    ``run`` path is not checked for rich.)
    """
    probe = (
        "import sys\n"
        "from openheim.__main__ import cli\n"
        "sys.argv = ['openheim', '--help']\n"
        "try:\n"
        "    cli(_anyio_backend='trio')\n"
        "except SystemExit:\n"
        "    pass\n"
        "def loaded(*names):\n"
        "    return sorted(name for name in names if name in sys.modules)\n"
        "print('help:', loaded('rich', 'prompt_toolkit'))\n"
        "import openheim.headless\n"
        "print('run:', loaded('openheim.repl', 'prompt_toolkit'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.splitlines()[-2:] == ["help: []", "run: []"]


async def test_a_failed_turn_is_one_error_line_and_the_next_prompt_works(home: ReplHome) -> None:
    home.llm.script.extend([HttpError(500)] * 3 + [Reply.text("recovered")])
    result = await run_piped(home, "hi\nagain\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("retrying in 0.1 s (attempt 3/3)\nrecovered\n")
    errors = result.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: fake provider error: HTTP 500")


async def test_empty_input_exits_at_once(home: ReplHome) -> None:
    result = await run_piped(home, "")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


async def test_sigint_with_piped_input_cancels_the_turn_then_quits_when_idle(
    home: ReplHome,
) -> None:
    home.llm.script.extend(
        [Reply.tool_call("execute_command", {"command": "sleep 30"}), Reply.text("next")]
    )
    process = await trio.lowlevel.open_process(
        home.command(),
        cwd=home.workdir,
        env=home.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    output = b""
    try:
        with trio.fail_after(10):
            await process.stdin.send_all(b"sleep please\n")
            while b"\xe2\x86\x92 execute_command" not in output:  # the arrow: the tool runs
                output += await process.stdout.receive_some()
            process.send_signal(signal.SIGINT)
            while b"cancelled\n" not in output:
                output += await process.stdout.receive_some()
            await process.stdin.send_all(b"go on\n")
            while b"next\n" not in output:
                output += await process.stdout.receive_some()
            # Idle, with no Ctrl-D on a pipe, SIGINT quits. The turn may still be ending as
            # "next" shows (and a SIGINT then only cancels it), so signal until it exits.
            while process.poll() is None:
                process.send_signal(signal.SIGINT)
                with trio.move_on_after(0.2):
                    await process.wait()
        assert process.returncode == 130
    finally:
        process.kill()
        await process.wait()


async def test_mcp_command_lists_the_configured_servers(home: ReplHome) -> None:
    none = await run_piped(home, "/mcp\n")
    assert none.returncode == 0, none.stderr
    assert none.stdout.startswith("no MCP servers (add [mcp_servers.NAME] to ")
    config = home.path / "config.toml"
    config.write_text(config.read_text() + '\n[mcp_servers.gone]\ncommand = "/nonexistent/mcp"\n')
    listed = await run_piped(home, "/mcp\n")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("gone (stdio: /nonexistent/mcp): ")
