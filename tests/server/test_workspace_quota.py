"""A tenant cannot fill the disk: `[server] max_workspace_bytes` holds for the fs channel, the
file tools and commands alike."""

from __future__ import annotations

from typing import Any

import trio

from openheim.testing import Reply
from tests.e2e.conftest import Home, home, request_messages
from tests.server.client import connect, running_server

__all__ = ["home"]

ALICE = "alice-token-0123456789abcdef"
SETTINGS = f'tokens = {{ "{ALICE}" = "alice" }}\nmax_workspace_bytes = 20000'


async def test_writes_past_the_quota_fail_clearly_and_deleting_frees_room(home: Home) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("write_file", {"path": "c.txt", "content": "c" * 8000}),  # 24,000: refused
        ("execute_command", {"command": "head -c 30000 /dev/zero > big; echo done"}),
        ("write_file", {"path": "d.txt", "content": "d"}),  # over: refused
        ("execute_command", {"command": "rm big; echo freed"}),
        ("write_file", {"path": "d.txt", "content": "d"}),
    ]
    home.llm.script.extend(
        Reply.tool_call(name, args, id=f"call_{i}") for i, (name, args) in enumerate(calls)
    )
    home.llm.script.append(Reply.text("done"))
    root = home.workdir / "alice"
    async with (
        running_server(home, SETTINGS) as server,
        connect(server.ws_url, token=ALICE) as alice,
    ):
        await alice.initialize()
        replies = []
        for name in ("a.txt", "b.txt", "e.txt"):
            await alice.send_fs({"action": "write", "path": name, "content": "x" * 8000})
            replies.append(await alice.receive_fs())
        # Deleting through the fs channel frees the room at once.
        await alice.send_fs({"action": "delete", "path": "b.txt"})
        replies.append(await alice.receive_fs())
        await alice.send_fs({"action": "write", "path": "b.txt", "content": "x" * 8000})
        replies.append(await alice.receive_fs())
        session_id = await alice.new_session(root)
        with trio.fail_after(30):
            _, response = await alice.prompt(session_id, "fill it")
        assert response["result"] == {"stopReason": "end_turn"}
    assert [r["type"] for r in replies] == [
        "write_success",
        "write_success",
        "error",
        "delete_success",
        "write_success",
    ]
    assert replies[2]["message"].startswith(
        "Failed to write: the workspace quota of 20000 bytes would be passed (16000 in use"
    )
    results = [m["content"] for m in request_messages(home.llm, len(calls)) if m["role"] == "tool"]
    assert results[0] == (
        "Cannot write c.txt: the workspace quota of 20000 bytes would be passed "
        "(16000 in use, 8000 more asked); delete files first"
    )
    assert results[1] == (
        "done\n[the workspace now holds 46000 bytes, over its quota of 20000: delete files; "
        "writes fail until it is under]"
    )
    assert "quota" in results[2]
    assert results[3] == "freed"
    assert results[4] == "Wrote 1 bytes to d.txt"  # the path as sent, not the server's
    assert sorted(p.name for p in root.iterdir()) == ["a.txt", "b.txt", "d.txt"]
