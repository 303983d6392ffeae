"""`openheim run` end to end: a real process, a real HTTP server, real tools and files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from openheim.testing import HttpError, Reply
from tests.e2e.conftest import API_KEY, Home, request_messages
from tests.processes import live_with_marker, unique_seconds
from tests.waiting import wait_until

MARKER = unique_seconds(30)


async def test_two_step_task_prints_answer_and_persists_history(home: Home) -> None:
    home.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo hello-from-tool"}, id="call_a"),
            Reply.text("The command printed hello-from-tool.", pieces=4),
        ]
    )
    result = await home.run("run", "Say hello through the shell")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The command printed hello-from-tool.\n"
    assert "→ execute_command" in result.stderr and "✓ execute_command" in result.stderr

    first, second = home.llm.requests
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.body["model"] == "fake-model"
    assert first.body["stream"] is True
    assert [t["function"]["name"] for t in first.body["tools"]] == [
        "execute_command",
        "read_file",
        "write_file",
        "edit_file",
        "list_dir",
        "glob",
        "grep",
        "web_fetch",
        "update_plan",
    ]
    assert second.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_a",
        "content": "hello-from-tool",
    }

    document = home.only_history()
    assert document["schema_version"] == 1
    assert document["meta"]["title"] == "Say hello through the shell"
    assert document["meta"]["cwd"] == str(home.workdir)
    roles = [m["role"] for m in document["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert document["messages"][1]["tool_calls"][0]["function"] == {
        "name": "execute_command",
        "arguments": json.dumps({"command": "echo hello-from-tool"}),
    }
    assert document["messages"][2]["content"] == "hello-from-tool"
    assert document["messages"][3]["content"] == "The command printed hello-from-tool."
    assert API_KEY not in home.history_files()[0].read_text()
    # Two replies of the fake server's default usage (10 in, 5 out) each.
    assert document["meta"]["usage"] == {
        "input_tokens": 20,
        "output_tokens": 10,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
    }


async def test_resume_and_continue_send_prior_messages(home: Home) -> None:
    home.llm.script.extend([Reply.text("First answer."), Reply.text("Second."), Reply.text("3")])
    assert (await home.run("run", "first question")).returncode == 0
    conversation_id = home.only_history()["meta"]["id"]

    result = await home.run("run", "--resume", conversation_id, "second question")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Second.\n"
    assert request_messages(home.llm, 1) == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "second question"},
    ]

    result = await home.run("run", "--continue", "third")
    assert result.returncode == 0, result.stderr
    assert [m["content"] for m in request_messages(home.llm, 2)][-2:] == ["Second.", "third"]
    assert len(home.history_files()) == 1
    assert len(home.only_history()["messages"]) == 6


async def test_429_with_retry_after_waits_then_succeeds(home: Home) -> None:
    home.llm.script.extend([HttpError(429, retry_after=1), Reply.text("worth the wait")])
    result = await home.run("run", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "worth the wait\n"
    first, second = home.llm.requests
    assert second.received_at - first.received_at >= 0.95
    assert "HTTP 429" in result.stderr and "retrying in 1.0 s (attempt 2/3)" in result.stderr


async def test_500_beyond_retry_limit_is_one_clear_error(home: Home) -> None:
    home.llm.script.extend([HttpError(500)] * 3)
    result = await home.run("run", "hi")
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("openheim:")]
    assert len(error_lines) == 1
    assert error_lines[0].startswith("openheim: error: fake provider error: HTTP 500")
    assert "Traceback" not in result.stderr
    assert len(home.llm.requests) == 3  # 1 attempt + max_retries = 2
    document = home.only_history()  # the prompt is kept, nothing half-written
    assert [m["role"] for m in document["messages"]] == ["user"]


async def test_drop_mid_stream_is_a_clear_error_and_history_stays_valid(home: Home) -> None:
    home.llm.script.extend(
        [Reply.text("a partial answer that breaks", pieces=6, drop_after=2), Reply.text("fine")]
    )
    result = await home.run("run", "hi")
    assert result.returncode == 1
    assert "openheim: error: fake provider error:" in result.stderr
    assert "broke off after output began" in result.stderr
    assert len(home.llm.requests) == 1  # output had begun: not retried
    document = home.only_history()
    assert document["messages"][0] == {"role": "user", "content": "hi"}

    resumed = await home.run("run", "--continue", "again")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "fine\n"


async def test_sigint_during_command_kills_it_and_saves_resumable_history(home: Home) -> None:
    pid_file = home.workdir / "shell.pid"
    home.llm.script.extend(
        [
            Reply.tool_call(
                "execute_command",
                {"command": f"echo started > shell.pid; sleep {MARKER} & sleep {MARKER}"},
            ),
            Reply.text("resumed fine"),
        ]
    )
    stderr_path = home.path / "stderr.txt"
    with stderr_path.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            home.command("run", "start a long command"),
            cwd=home.workdir,
            env=home.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            # Another process writes the file: polling is the only way to see it.
            await wait_until(
                lambda: pid_file.exists() and pid_file.read_text().strip(),
                seconds=20,
                what="shell.pid",
            )
            marker = MARKER
            assert live_with_marker(marker), "the command should be running"
            process.send_signal(signal.SIGINT)
            with trio.fail_after(5):
                code = await process.wait()
        finally:
            process.kill()
            await process.wait()
    assert code == 130, stderr_path.read_text()
    assert live_with_marker(marker) == []
    assert "cancelled; the conversation is saved" in stderr_path.read_text()

    document = home.only_history()
    messages = document["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[2]["is_error"] is True
    assert messages[2]["content"].startswith("cancelled")

    resumed = await home.run("run", "--continue", "what happened?")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "resumed fine\n"
    assert request_messages(home.llm, 1)[2]["tool_call_id"] == messages[1]["tool_calls"][0]["id"]


async def test_max_iterations_is_a_clear_outcome(home: Home) -> None:
    home.llm.script.extend([Reply.tool_call("execute_command", {"command": "true"})])
    result = await home.run("run", "--max-iterations", "1", "loop forever")
    assert result.returncode == 3
    assert "stopped: max iterations reached (1)" in result.stderr
    assert [m["role"] for m in home.only_history()["messages"]] == ["user", "assistant", "tool"]


async def test_model_choice_and_skills_reach_the_request(home: Home) -> None:
    skills = home.path / "skills"
    skills.mkdir()
    (skills / "terse.md").write_text("Answer in one word.")
    (skills / "polite.md").write_text("Say please.")
    home.llm.script.extend([Reply.text("Yes")])
    result = await home.run("run", "--model", "other-model", "--skills", "polite,terse", "ok?")
    assert result.returncode == 0, result.stderr
    body = home.llm.requests[0].body
    assert body["model"] == "other-model"
    system = body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].index("## Skill: polite") < system["content"].index("## Skill: terse")
    assert home.only_history()["meta"]["skills"] == ["polite", "terse"]


async def test_keyless_compatible_provider_sends_no_auth(home: Home) -> None:
    home.write_config(
        extra_provider=f"""
[providers.local]
api_base = "{home.llm.base_url}"
default_model = "llama"
max_tokens = 77
"""
    )
    home.llm.script.extend([Reply.text("local")])
    env = home.env()
    env.pop("FAKE_LLM_KEY")
    result = await home.run("run", "--model", "local/llama", "hi", env=env)
    assert result.returncode == 0, result.stderr
    assert "authorization" not in home.llm.requests[0].headers
    body = home.llm.requests[0].body
    assert body["model"] == "llama"
    assert body["max_tokens"] == 77 and "max_completion_tokens" not in body


async def test_help_and_run_never_load_the_web_stack(home: Home) -> None:
    code = (
        "import sys, openheim.cli, openheim.headless; "
        "print(sorted(m for m in sys.modules if m.startswith(('quart', 'hypercorn', "
        "'openheim.server'))))"
    )
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, "-c", code], capture_stdout=True, env=home.env()
        )
    assert done.stdout.decode().strip() == "[]"


async def test_a_plain_answer_imports_no_page_converter_retry_library_or_anyio(
    home: Home,
) -> None:
    """Startup time: ``run`` imports web_fetch's HTML converter only for a page, and runs on
    trio without anyio (bench/RESULTS.md, "One-shot start against llm")."""
    home.llm.script.extend([Reply.text("hi")])
    result = await home.run("run", "hi", env=home.env(PYTHONPROFILEIMPORTTIME="1"))
    assert result.returncode == 0, result.stderr
    loaded = {
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "openheim.headless" in loaded and "openheim.tools.web" in loaded
    # anyio.abc, not anyio: httpcore's attempt to import anyio is listed even when it fails.
    assert not loaded & {"openheim.tools.html_text", "html.parser", "anyio.abc"}


async def test_init_writes_config_once(home: Home, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-home"
    env = home.env(OPENHEIM_HOME=str(fresh))
    result = await home.run("init", env=env)
    assert result.returncode == 0, result.stderr
    assert (fresh / "config.toml").read_text().startswith("# openheim configuration")
    again = await home.run("init", env=env)
    assert again.returncode == 1
    assert "already exists; fix:" in again.stderr and "--force" in again.stderr
    assert (await home.run("init", "--force", env=env)).returncode == 0


async def test_version(home: Home) -> None:
    result = await home.run("--version")
    assert result.returncode == 0 and "openheim, version" in result.stdout
    assert os.environ.get("OPENHEIM_HOME") != str(home.path)


async def test_ask_without_a_terminal_is_denied_and_yes_allows(home: Home) -> None:
    config = home.path / "config.toml"
    config.write_text(config.read_text() + '\n[permissions]\nexecute_command = "ask"\n')
    call = Reply.tool_call("execute_command", {"command": "echo ran > ran.txt"})
    home.llm.script.extend([call, Reply.text("ok"), call, Reply.text("ok")])

    denied = await home.run("run", "write a file")
    assert denied.returncode == 0, denied.stderr
    assert "✗ execute_command" in denied.stderr and "nobody was available" in denied.stderr
    assert not (home.workdir / "ran.txt").exists()

    allowed = await home.run("run", "--yes", "write a file")
    assert allowed.returncode == 0, allowed.stderr
    assert (home.workdir / "ran.txt").read_text() == "ran\n"
