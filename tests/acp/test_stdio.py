"""`openheim acp` end to end: a real agent process over stdio, a raw JSON-RPC client."""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

import trio

from openheim.testing import HttpError, Reply
from tests.acp.client import chunk_text, kinds, open_agent, updates
from tests.e2e.conftest import Home, request_messages
from tests.processes import live_with_marker, unique_seconds

ASK_SHELL = '\n[permissions]\nexecute_command = "ask"\n'

MARKER = unique_seconds(30)


def prompt(session_id: str, text: str) -> dict[str, Any]:
    return {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}


async def test_tool_call_updates_arrive_in_order_before_the_reply(home: Home) -> None:
    home.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo hello-acp"}, id="call_a"),
            Reply.text("The shell said hello-acp.", pieces=3),
        ]
    )
    async with open_agent(home) as agent:
        init = await agent.initialize()
        assert init["protocolVersion"] == 1
        assert init["agentCapabilities"]["loadSession"] is True
        assert init["_meta"]["models"]["providers"]["fake"]["default_model"] == "fake-model"
        assert [t["function"]["name"] for t in init["_meta"]["tools"]] == [
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
        session_id = await agent.new_session(home.workdir)
        before, response = await agent.call("session/prompt", prompt(session_id, "say hello"))

    assert response["result"] == {"stopReason": "end_turn"}
    seen = kinds(before)
    assert seen[:3] == [
        "tool_call:pending",
        "tool_call_update:in_progress",
        "tool_call_update:completed",
    ]
    # The reply's three pieces, merged where they waited for the turn (a backlog).
    assert 1 <= len(seen[3:]) <= 3 and set(seen[3:]) == {"agent_message_chunk"}
    started, running, done, *_ = updates(before)
    assert started == {
        "sessionUpdate": "tool_call",
        "toolCallId": "call_a",
        "title": "echo hello-acp",
        "kind": "execute",
        "status": "pending",
        "rawInput": {"command": "echo hello-acp"},
    }
    assert running["toolCallId"] == done["toolCallId"] == "call_a"
    assert done["content"] == [
        {"type": "content", "content": {"type": "text", "text": "hello-acp"}}
    ]
    assert chunk_text(before) == "The shell said hello-acp."
    assert all(m["params"]["sessionId"] == session_id for m in before)


async def test_permission_allow_runs_the_tool_and_reject_fails_it(home: Home) -> None:
    home.write_config(extra_provider=ASK_SHELL)
    home.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo allowed"}, id="call_1"),
            Reply.text("ran it"),
            Reply.tool_call("execute_command", {"command": "echo rejected"}, id="call_2"),
            Reply.text("did not run it"),
        ]
    )
    asked: list[dict[str, Any]] = []

    def answer_with(option: str) -> Any:
        def respond(request: dict[str, Any]) -> Any:
            assert request["method"] == "session/request_permission"
            asked.append(request["params"])
            return {"outcome": {"outcome": "selected", "optionId": option}}

        return respond

    async with open_agent(home) as agent:
        await agent.initialize()
        session_id = await agent.new_session(home.workdir)
        allowed, response = await agent.call(
            "session/prompt", prompt(session_id, "run it"), answer_with("allow_once")
        )
        assert response["result"] == {"stopReason": "end_turn"}
        rejected, response = await agent.call(
            "session/prompt", prompt(session_id, "run again"), answer_with("reject_once")
        )
        assert response["result"] == {"stopReason": "end_turn"}

    assert kinds(allowed)[:4] == [
        "tool_call:pending",
        "session/request_permission",
        "tool_call_update:in_progress",
        "tool_call_update:completed",
    ]
    assert updates(allowed)[2]["content"][0]["content"]["text"] == "allowed"
    assert kinds(rejected)[:3] == [
        "tool_call:pending",
        "session/request_permission",
        "tool_call_update:failed",
    ]
    failed = updates(rejected)[1]
    assert failed["content"][0]["content"]["text"].startswith(
        "permission denied: the user rejected"
    )
    first = asked[0]
    assert first["sessionId"] == session_id
    assert first["toolCall"]["toolCallId"] == "call_1"
    assert first["toolCall"]["kind"] == "execute"
    assert [o["optionId"] for o in first["options"]] == [
        "allow_once",
        "allow_always",
        "reject_once",
        "reject_always",
    ]
    # The model was told: its tool result is the refusal.
    assert request_messages(home.llm, 3)[-1]["content"].startswith("permission denied")


async def test_unanswered_permission_request_times_out_as_denied(home: Home) -> None:
    home.write_config(extra_provider=ASK_SHELL)
    home.llm.script.extend(
        [Reply.tool_call("execute_command", {"command": "echo x"}), Reply.text("ok")]
    )
    env = home.env(OPENHEIM_ACP_PERMISSION_TIMEOUT="0.3")
    async with open_agent(home, env=env) as agent:
        await agent.initialize()
        session_id = await agent.new_session(home.workdir)
        request_id = await agent.request("session/prompt", prompt(session_id, "go"))
        before, response = await agent.until_response(request_id, respond=lambda _: None)
        # The test "answered" null, which is no selection: denied at once. Now stay silent.
    assert response["result"] == {"stopReason": "end_turn"}
    assert "tool_call_update:failed" in kinds(before)

    home.llm.script.extend(
        [Reply.tool_call("execute_command", {"command": "echo y"}), Reply.text("ok")]
    )
    async with open_agent(home, env=env, name="silent") as agent:
        await agent.initialize()
        session_id = await agent.new_session(home.workdir)
        request_id = await agent.request("session/prompt", prompt(session_id, "go"))
        seen: list[dict[str, Any]] = []
        with trio.fail_after(3):
            while True:
                message = await agent.receive()
                seen.append(message)
                if message.get("id") == request_id and "result" in message:
                    break
    assert "$/cancel_request" in kinds(seen)  # the agent withdrew its question
    denied = [u for u in updates(seen) if u.get("status") == "failed"]
    assert denied[0]["content"][0]["content"]["text"].startswith("permission denied: nobody")


async def test_cancel_kills_the_command_then_the_session_continues_and_reloads(
    home: Home,
) -> None:
    pid_file = home.workdir / "shell.pid"
    home.llm.script.extend(
        [
            Reply.tool_call(
                "execute_command",
                {"command": f"echo started > shell.pid; sleep {MARKER} & sleep {MARKER}"},
                id="call_long",
            ),
            Reply.text("after the cancel"),
        ]
    )
    async with open_agent(home) as agent:
        await agent.initialize()
        session_id = await agent.new_session(home.workdir)
        request_id = await agent.request("session/prompt", prompt(session_id, "sleep a while"))
        with trio.fail_after(10):
            while (
                "tool_call_update" not in [u["sessionUpdate"] for u in updates(agent.seen)]
                or not pid_file.exists()
                or not pid_file.read_text().strip()
            ):
                with trio.move_on_after(0.05):
                    await agent.receive()
        marker = MARKER
        assert live_with_marker(marker), "the command should be running"

        cancelled_at = trio.current_time()
        await agent.notify("session/cancel", {"sessionId": session_id})
        before, response = await agent.until_response(request_id)
        elapsed = trio.current_time() - cancelled_at
        assert response["result"] == {"stopReason": "cancelled"}
        assert elapsed < 1.0, elapsed
        assert live_with_marker(marker) == []
        assert kinds(before)[-1] == "tool_call_update:failed"
        assert updates(before)[-1]["content"][0]["content"]["text"].startswith("cancelled")

        after, response = await agent.call("session/prompt", prompt(session_id, "and now?"))
        assert response["result"] == {"stopReason": "end_turn"}
        assert chunk_text(after) == "after the cancel"

    # A new agent process replays the stored conversation before answering session/load.
    async with open_agent(home, name="second") as agent:
        await agent.initialize()
        before, response = await agent.call(
            "session/load", {"sessionId": session_id, "cwd": str(home.workdir), "mcpServers": []}
        )
        assert response["result"]["configOptions"][0]["currentValue"] == "fake/fake-model"
        assert kinds(before) == [
            "user_message_chunk",
            "tool_call:failed",
            "user_message_chunk",
            "agent_message_chunk",
        ]
        replayed = updates(before)
        assert chunk_text(before, "user_message_chunk") == "sleep a whileand now?"
        assert replayed[1]["toolCallId"] == "call_long"
        assert replayed[1]["content"][0]["content"]["text"].startswith("cancelled")
        assert replayed[3]["content"]["text"] == "after the cancel"

        _, missing = await agent.call(
            "session/load", {"sessionId": str(uuid.uuid4()), "cwd": str(home.workdir)}
        )
        assert missing["error"]["code"] == -32002
        _, invalid = await agent.call(
            "session/load", {"sessionId": "../etc/passwd", "cwd": str(home.workdir)}
        )
        assert invalid["error"]["code"] == -32602

        listed = await agent.result("session/list", {"cwd": str(home.workdir)})
        assert [s["sessionId"] for s in listed["sessions"]] == [session_id]
        assert listed["sessions"][0]["title"] == "sleep a while"
        assert (await agent.result("session/list", {"cwd": "/elsewhere"}))["sessions"] == []


async def test_bad_input_gets_json_rpc_errors_and_the_agent_keeps_serving(home: Home) -> None:
    async with open_agent(home) as agent:
        await agent.send_raw(b"this is not json\n")
        assert (await agent.receive()) == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32700, "message": "Parse error: Expecting value (line 1, column 1)"},
        }
        await agent.send_raw(b"42\r\n")
        assert (await agent.receive())["error"]["code"] == -32600
        await agent.send_raw(b'[{"jsonrpc":"2.0","id":1,"method":"initialize"}]\n')
        batch = await agent.receive()
        assert batch["error"]["code"] == -32600 and batch["id"] is None
        await agent.send_raw(b'{"jsonrpc":"1.0","id":"x","method":"initialize"}\n')
        assert (await agent.receive())["id"] == "x"
        await agent.send_raw(b'{"jsonrpc":"2.0","id":"partial",')  # split mid-message
        # This sleep stays: it paces the writes so the agent likely reads the halves apart (the
        # subject); nothing waits on it, and the answer below is the same either way.
        await trio.sleep(0.05)
        await agent.send_raw(b'"method":"no/such_method"}\n')
        unknown = await agent.receive()
        assert unknown["id"] == "partial" and unknown["error"]["code"] == -32601
        _, early = await agent.call("session/new", {"cwd": str(home.workdir), "mcpServers": []})
        assert early["error"]["code"] == -32600  # ACP: initialize comes first
        await agent.result("initialize", {"protocolVersion": 1, "clientCapabilities": {}})

        _, relative = await agent.call("session/new", {"cwd": "relative/dir", "mcpServers": []})
        assert relative["error"]["code"] == -32602
        _, bad_model = await agent.call(
            "session/new",
            {"cwd": str(home.workdir), "mcpServers": [], "_meta": {"model": "nope"}},
        )
        assert bad_model["error"]["code"] == -32602
        assert "model 'nope' is not listed" in bad_model["error"]["message"]
        _, bad_skill = await agent.call(
            "session/new",
            {"cwd": str(home.workdir), "mcpServers": [], "_meta": {"skills": ["ghost"]}},
        )
        assert bad_skill["error"]["code"] == -32602
        assert "unknown skill 'ghost'" in bad_skill["error"]["message"]
        _, bad_mcp = await agent.call(
            "session/new", {"cwd": str(home.workdir), "mcpServers": [{"name": "x", "env": {}}]}
        )
        assert bad_mcp["error"]["code"] == -32602
        _, no_session = await agent.call("session/prompt", prompt("nope", "hi"))
        assert no_session["error"]["code"] == -32002

        session_id = await agent.new_session(home.workdir)
        _, image = await agent.call(
            "session/prompt",
            {"sessionId": session_id, "prompt": [{"type": "image", "data": "", "mimeType": "x"}]},
        )
        assert image["error"]["code"] == -32602
        _, unstable = await agent.call("session/fork", {"sessionId": session_id})
        assert unstable["error"]["code"] == -32601
        await agent.notify("some/notification", {})
        await agent.notify("$/cancel_request", {"requestId": 99})

        init = await agent.initialize()
        assert init["protocolVersion"] == 1


async def test_protocol_version_negotiation_answers_1(home: Home) -> None:
    async with open_agent(home) as agent:
        for version in (1, 2, 65535, "1.0.0", None):
            result = await agent.result("initialize", {"protocolVersion": version})
            assert result["protocolVersion"] == 1


async def test_model_config_option_and_legacy_set_model(home: Home) -> None:
    home.llm.script.extend([Reply.text("one"), Reply.text("two")])
    async with open_agent(home) as agent:
        await agent.initialize()
        created = await agent.result(
            "session/new", {"cwd": str(home.workdir), "mcpServers": [], "_meta": {}}
        )
        assert created["_meta"]["models"]["currentModelId"] == "fake/fake-model"
        option = created["configOptions"][0]
        assert option["id"] == "model" and option["category"] == "model"
        assert [o["value"] for o in option["options"]] == ["fake/fake-model", "fake/other-model"]
        session_id = created["sessionId"]

        changed = await agent.result(
            "session/set_config_option",
            {"sessionId": session_id, "configId": "model", "value": "fake/other-model"},
        )
        assert changed["configOptions"][0]["currentValue"] == "fake/other-model"
        await agent.call("session/prompt", prompt(session_id, "hi"))
        assert home.llm.requests[0].body["model"] == "other-model"

        _, unknown = await agent.call(
            "session/set_config_option",
            {"sessionId": session_id, "configId": "model", "value": "fake/ghost"},
        )
        assert unknown["error"]["code"] == -32602
        assert (
            await agent.result(
                "session/set_model", {"sessionId": session_id, "modelId": "fake/fake-model"}
            )
            == {}
        )
        await agent.call("session/prompt", prompt(session_id, "again"))
        assert home.llm.requests[1].body["model"] == "fake-model"


async def test_provider_error_is_a_json_rpc_error_and_the_session_survives(home: Home) -> None:
    home.llm.script.extend([HttpError(500)] * 3 + [Reply.text("recovered")])
    async with open_agent(home) as agent:
        await agent.initialize()
        session_id = await agent.new_session(home.workdir)
        _, failed = await agent.call("session/prompt", prompt(session_id, "hi"))
        assert failed["error"]["code"] == -32603
        assert failed["error"]["message"].startswith("fake provider error: HTTP 500")
        before, ok = await agent.call("session/prompt", prompt(session_id, "again"))
        assert ok["result"] == {"stopReason": "end_turn"}
        assert chunk_text(before) == "recovered"


async def test_file_tools_go_through_the_client_when_it_offers_fs(home: Home) -> None:
    notes = home.workdir / "notes.txt"
    notes.write_text("on disk\n")
    home.llm.script.extend(
        [
            Reply.tool_call("read_file", {"path": "notes.txt"}, id="read"),
            Reply.tool_call("write_file", {"path": "out.txt", "content": "new text"}, id="w"),
            Reply.tool_call("read_file", {"path": "gone.txt"}, id="missing"),
            Reply.text("done"),
        ]
    )
    requests: list[dict[str, Any]] = []

    def client_fs(request: dict[str, Any]) -> Any:
        requests.append(request)
        if request["method"] == "fs/write_text_file":
            return None  # some clients send null for {}
        if request["params"]["path"].endswith("gone.txt"):
            return {"error": {"code": -32002, "message": "no such buffer"}}
        return {"content": "from the editor buffer\n"}

    async with open_agent(home) as agent:
        await agent.initialize(fs={"readTextFile": True, "writeTextFile": True})
        session_id = await agent.new_session(home.workdir)
        before, response = await agent.call(
            "session/prompt", prompt(session_id, "edit notes"), client_fs
        )
    assert response["result"] == {"stopReason": "end_turn"}
    assert [r["method"] for r in requests] == [
        "fs/read_text_file",
        "fs/write_text_file",
        "fs/read_text_file",
    ]
    assert requests[0]["params"] == {"sessionId": session_id, "path": str(notes)}
    assert requests[1]["params"]["content"] == "new text"
    assert not (home.workdir / "out.txt").exists()  # the client wrote it, not us
    assert request_messages(home.llm, 1)[-1]["content"] == "from the editor buffer\n"
    assert request_messages(home.llm, 2)[-1]["content"].startswith("Wrote 8 bytes")
    missing = request_messages(home.llm, 3)[-1]["content"]
    assert "no such buffer" in missing
    read_call = updates(before)[0]
    assert read_call["kind"] == "read" and read_call["title"] == "Read notes.txt"
    assert read_call["locations"] == [{"path": str(notes)}]


async def test_stdin_eof_cancels_the_turn_saves_and_exits_0(home: Home) -> None:
    home.llm.script.extend([Reply.tool_call("execute_command", {"command": "sleep 30"})])
    async with open_agent(home) as agent:
        await agent.initialize()
        session_id = await agent.new_session(home.workdir)
        await agent.request("session/prompt", prompt(session_id, "sleep"))
        with trio.fail_after(10):
            while "tool_call_update" not in [u["sessionUpdate"] for u in updates(agent.seen)]:
                await agent.receive()
        closed_at = trio.current_time()
        await agent.close_stdin()
        with trio.fail_after(3):
            assert await agent.process.wait() == 0
        assert trio.current_time() - closed_at < 1.5
    document = json.loads(home.history_files()[0].read_text())
    assert [m["role"] for m in document["messages"]] == ["user", "assistant", "tool"]
    assert document["messages"][2]["content"].startswith("cancelled")


async def test_idle_agent_exits_0_at_once_on_eof(home: Home) -> None:
    async with open_agent(home) as agent:
        await agent.initialize()
        closed_at = trio.current_time()
        await agent.close_stdin()
        with trio.fail_after(3):
            assert await agent.process.wait() == 0
        assert trio.current_time() - closed_at < 0.5


async def test_config_error_is_one_line_and_exit_1(home: Home) -> None:
    (home.path / "config.toml").write_text("default_provider = \n")
    result = await home.run("acp")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("openheim: error: ") and result.stderr.count("\n") == 1


async def test_sigterm_is_a_graceful_exit_0(home: Home) -> None:
    async with open_agent(home) as agent:
        await agent.initialize()
        agent.process.terminate()
        with trio.fail_after(3):
            assert await agent.process.wait() == 0


async def test_claimed_stdio_keeps_prints_and_children_off_the_protocol(home: Home) -> None:
    script = (
        "import os, subprocess, sys\n"
        "from openheim.acp.stdio import claim_stdio\n"
        "with claim_stdio() as (proto_in, proto_out):\n"
        "    print('stray print')\n"
        "    subprocess.run(['sh', '-c', 'echo child; cat'], check=True)\n"
        "    os.write(proto_out, os.read(proto_in, 100))\n"
    )
    with trio.fail_after(10):
        done = await trio.run_process(
            [sys.executable, "-c", script],
            stdin=b"protocol line\n",
            capture_stdout=True,
            capture_stderr=True,
        )
    assert done.stdout == b"protocol line\n"  # the child's `cat` read /dev/null, not our stdin
    assert b"stray print" in done.stderr and b"child" in done.stderr
