"""What an editor draws of tool calls, end to end through `openheim acp`: each call's kind and
locations, an edit as a diff, and a running command's output as it comes."""

from __future__ import annotations

from typing import Any

import trio

from openheim.testing import Reply
from tests.acp.client import open_agent, updates
from tests.e2e.conftest import Home


def prompt(session_id: str, text: str) -> dict[str, Any]:
    return {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}


def by_call(seen: list[dict[str, Any]], call_id: str) -> list[dict[str, Any]]:
    return [u for u in updates(seen) if u.get("toolCallId") == call_id]


async def test_an_edit_is_a_diff_with_kind_and_locations(home: Home) -> None:
    notes = home.workdir / "notes.txt"
    notes.write_text("title\nold line\nend\n")
    home.llm.script.extend(
        [
            Reply.tool_call(
                "edit_file",
                {"path": "notes.txt", "old_string": "old line", "new_string": "new line"},
                id="edit",
            ),
            Reply.tool_call("grep", {"pattern": "new"}, id="find"),
            Reply.tool_call("list_dir", {}, id="list"),
            Reply.text("done"),
        ]
    )
    async with open_agent(home) as agent:
        await agent.initialize()
        session_id = await agent.new_session(home.workdir)
        seen, response = await agent.call("session/prompt", prompt(session_id, "edit"))
    assert response["result"] == {"stopReason": "end_turn"}
    started, *_, done = by_call(seen, "edit")
    assert (started["sessionUpdate"], started["kind"], started["title"]) == (
        "tool_call",
        "edit",
        "Edit notes.txt",
    )
    assert started["locations"] == [{"path": str(notes)}]
    assert done["status"] == "completed"
    assert done["content"] == [
        {
            "type": "diff",
            "path": str(notes),
            "oldText": "title\nold line\nend\n",
            "newText": "title\nnew line\nend\n",
        }
    ]
    assert done["locations"] == [{"path": str(notes), "line": 2}]
    assert "+new line" in done["rawOutput"]
    assert notes.read_text() == "title\nnew line\nend\n"
    found_started, *_, found = by_call(seen, "find")
    assert found_started["kind"] == "search"
    assert found["locations"] == [{"path": str(notes), "line": 2}]
    assert found["rawOutput"] == "notes.txt:2: new line\n[1 match in 1 file]"
    assert by_call(seen, "list")[0]["kind"] == "read"


async def test_a_running_command_streams_its_output(home: Home) -> None:
    gate = home.workdir / "go"
    command = f"echo started; while [ ! -e {gate} ]; do sleep 0.02; done; echo finished"
    home.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": command}, id="run"),
            Reply.text("ok"),
        ]
    )
    async with open_agent(home) as agent:
        await agent.initialize()
        session_id = await agent.new_session(home.workdir)
        request = await agent.request("session/prompt", prompt(session_id, "run it"))

        def streamed() -> list[str]:
            return [
                u["content"][0]["content"]["text"]
                for u in by_call(agent.seen, "run")
                if u["sessionUpdate"] == "tool_call_update" and "status" not in u
            ]

        with trio.fail_after(20):
            while "started\n" not in streamed():
                await agent.receive()
        gate.touch()  # only now may the command finish
        _, response = await agent.until_response(request)
    assert response["result"] == {"stopReason": "end_turn"}
    assert streamed()[0] == "started\n"
    final = by_call(agent.seen, "run")[-1]
    assert final["status"] == "completed"
    assert final["rawOutput"] == "started\nfinished"
    kinds = [u["kind"] for u in by_call(agent.seen, "run") if u["sessionUpdate"] == "tool_call"]
    assert kinds == ["execute"]
