"""The REPL in a real pseudo-terminal: prompt_toolkit input, rich output, Ctrl-C and Ctrl-D."""

from __future__ import annotations

import re

from openheim.testing import Reply
from tests.e2e.conftest import request_messages
from tests.processes import live_with_marker, unique_seconds
from tests.repl.conftest import ReplHome
from tests.waiting import wait_until

MARKER = unique_seconds(30)


async def test_tool_exchange_then_ctrl_d_exits_and_keeps_the_conversation(home: ReplHome) -> None:
    home.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo hello-from-tool"}),
            Reply.text("The command printed hello-from-tool.", pieces=4),
        ]
    )
    screen = await home.spawn()
    await screen.expect("fake/fake-model")
    await screen.expect("/help for commands")
    await screen.enter("Say hello through the shell")
    await screen.expect('→ execute_command {"command": "echo hello-from-tool"}')
    await screen.expect(re.compile(r"✓ execute_command \(\d+\.\d\d s\)"))
    await screen.expect("The command printed hello-from-tool.")
    assert await screen.quit() == 0

    document = home.only_history()
    assert [m["role"] for m in document["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert document["meta"]["title"] == "Say hello through the shell"
    assert "Say hello through the shell" in (home.path / "repl_history").read_text()

    screen = await home.spawn("--continue")
    await screen.expect(
        f"resumed {document['meta']['id']}: Say hello through the shell · 4 messages"
    )
    await screen.prompt()
    await screen.send("\x1b[A")  # Up: the previous session's input is in the history
    await screen.expect("Say hello through the shell")
    await screen.control("c")
    assert await screen.quit() == 0


async def test_ctrl_c_cancels_the_running_tool_not_the_repl(home: ReplHome) -> None:
    pid_file = home.workdir / "shell.pid"
    home.llm.script.extend(
        [
            Reply.tool_call(
                "execute_command",
                {"command": f"echo started > shell.pid; sleep {MARKER} & sleep {MARKER}"},
            ),
            Reply.text("still here"),
        ]
    )
    screen = await home.spawn()
    await screen.enter("start a long command")
    await screen.expect("→ execute_command")
    # The shell writes the file: polling is the only way to see it.
    await wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="shell.pid")
    marker = MARKER
    assert live_with_marker(marker), "the command should be running"

    await screen.control("c")
    await screen.expect(re.compile(r"(?m)^cancelled$"))
    await screen.prompt()
    assert live_with_marker(marker) == []

    await screen.enter("what happened?")
    await screen.expect("still here")
    await screen.prompt()
    messages = request_messages(home.llm, 1)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user"]
    assert messages[2]["content"].startswith("cancelled")
    assert await screen.quit() == 0


async def test_ctrl_c_at_the_prompt_clears_the_line(home: ReplHome) -> None:
    screen = await home.spawn()
    await screen.prompt()
    await screen.send("never sent")
    await screen.expect("never sent")
    await screen.control("c")
    await screen.enter("/exit")
    assert await screen.exit_code() == 0
    assert home.llm.requests == []
    assert home.history_files() == []


async def test_model_switching(home: ReplHome) -> None:
    home.llm.script.extend([Reply.text("from the other model")])
    screen = await home.spawn()
    await screen.enter("/model")
    await screen.expect("model: fake/fake-model")
    await screen.expect("* fake/fake-model")
    await screen.expect("fake/other-model")
    await screen.prompt()

    await screen.enter("/model no-such-model")
    await screen.expect("error: ")
    await screen.expect("'no-such-model' is not listed by any provider")
    await screen.prompt()

    await screen.enter("/model other-model")
    await screen.expect("model: fake/other-model")
    await screen.enter("hi")
    await screen.expect("from the other model")
    await screen.prompt()
    assert home.llm.requests[0].body["model"] == "other-model"
    await screen.enter("/model")
    await screen.expect("* fake/other-model")
    assert await screen.quit() == 0
    assert home.only_history()["meta"]["model"] == "other-model"


async def test_sessions_new_and_resume(home: ReplHome) -> None:
    home.llm.script.extend([Reply.text("one"), Reply.text("two"), Reply.text("three")])
    screen = await home.spawn()
    await screen.enter("/sessions")
    await screen.expect("no stored conversations yet")
    await screen.enter("first question")
    await screen.expect("one")
    await screen.prompt()
    first_id = home.only_history()["meta"]["id"]

    await screen.enter("/sessions")
    await screen.expect(re.compile(rf"\* {first_id}  \d{{4}}-\d\d-\d\d \d\d:\d\d  first question"))
    await screen.enter("/new")
    second_id = (await screen.expect(re.compile(r"new conversation (\S+) · fake/fake-model")))[1]
    assert second_id != first_id
    await screen.enter("second question")
    await screen.expect("two")
    await screen.prompt()
    assert request_messages(home.llm, 1) == [{"role": "user", "content": "second question"}]

    await screen.enter("/sessions")
    await screen.expect(f"* {second_id}")
    await screen.expect(f"  {first_id}")
    await screen.enter(f"/resume {first_id[:8]}")
    await screen.expect(f"resumed {first_id}: first question · 2 messages")
    await screen.enter("third question")
    await screen.expect("three")
    await screen.prompt()
    assert [m["content"] for m in request_messages(home.llm, 2)] == [
        "first question",
        "one",
        "third question",
    ]
    await screen.enter("/resume nope")
    await screen.expect("error: ")
    await screen.enter("/bogus")
    await screen.expect("unknown command /bogus; /help lists the commands")
    assert await screen.quit() == 0
    assert len(home.history_files()) == 2


async def test_ask_policy_asks_in_the_terminal(home: ReplHome) -> None:
    config = home.path / "config.toml"
    config.write_text(config.read_text() + '\n[permissions]\nexecute_command = "ask"\n')
    call = Reply.tool_call("execute_command", {"command": "echo ran > ran.txt"})
    home.llm.script.extend([call, Reply.text("done"), call, Reply.text("refused"), call])
    screen = await home.spawn()
    await screen.enter("write a file")
    await screen.expect("Allow execute_command")
    await screen.expect("[y]es / [n]o / [a]lways / ne[v]er:")
    await screen.line("y")
    await screen.expect("✓ execute_command")
    await screen.expect("done")
    await screen.prompt()
    assert (home.workdir / "ran.txt").read_text() == "ran\n"

    (home.workdir / "ran.txt").unlink()
    await screen.enter("again")
    await screen.expect("Allow execute_command")
    await screen.line("n")
    await screen.expect("✗ execute_command")
    await screen.expect("refused")
    await screen.prompt()
    assert not (home.workdir / "ran.txt").exists()

    await screen.enter("once more")
    await screen.expect("Allow execute_command")
    await screen.control("c")  # at the question: cancels the turn
    await screen.expect(re.compile(r"(?m)^cancelled$"))
    assert await screen.quit() == 0
    assert not (home.workdir / "ran.txt").exists()


async def test_multi_line_input(home: ReplHome) -> None:
    home.llm.script.extend([Reply.text("got it")])
    screen = await home.spawn()
    await screen.prompt()
    await screen.send("first line\\\r")  # a trailing backslash continues
    await screen.send("second\x1b\r")  # Esc Enter (what Alt-Enter sends) inserts a newline
    await screen.line("third")
    await screen.expect("got it")
    await screen.prompt()
    assert request_messages(home.llm, 0) == [
        {"role": "user", "content": "first line\nsecond\nthird"}
    ]
    assert await screen.quit() == 0
