"""`openheim acp` with a reasoning model: thoughts reach the client as ``agent_thought_chunk``
updates, apart from the answer, live and in the ``session/load`` replay."""

from __future__ import annotations

from openheim.testing import Reply
from tests.acp.client import chunk_text, kinds, open_agent, updates
from tests.e2e.conftest import Home

THOUGHT = "Two and two make four; no tool needed."


def runs(items: list[str]) -> list[str]:
    """``items`` with repeats in a row collapsed."""
    return [
        item for position, item in enumerate(items) if item not in items[position - 1 : position]
    ]


async def test_thoughts_arrive_as_agent_thought_chunks_live_and_on_load(home: Home) -> None:
    home.write_config(extra_provider='reasoning = "medium"\n')
    home.llm.script.extend([Reply.text("It is 4.", pieces=2, thinking=THOUGHT)])
    async with open_agent(home) as agent:
        await agent.initialize()
        session_id = await agent.new_session(home.workdir)
        prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": "2+2?"}]}
        before, response = await agent.call("session/prompt", prompt)

    assert response["result"] == {"stopReason": "end_turn"}
    # Chunks waiting in a backlog may be merged, so only the order of the kinds is fixed.
    assert runs(kinds(before)) == ["agent_thought_chunk", "agent_message_chunk"]
    assert chunk_text(before, "agent_thought_chunk") == THOUGHT
    assert chunk_text(before) == "It is 4."
    assert updates(before)[0]["content"]["type"] == "text"
    assert home.llm.requests[0].body["reasoning_effort"] == "medium"

    async with open_agent(home, name="second") as agent:
        await agent.initialize()
        replayed, response = await agent.call(
            "session/load", {"sessionId": session_id, "cwd": str(home.workdir), "mcpServers": []}
        )
    assert "error" not in response
    assert kinds(replayed) == ["user_message_chunk", "agent_thought_chunk", "agent_message_chunk"]
    assert chunk_text(replayed, "agent_thought_chunk") == THOUGHT
    assert chunk_text(replayed) == "It is 4."
