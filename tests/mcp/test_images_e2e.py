"""Images end to end: an ACP client's pasted image and an MCP tool's screenshot reach the fake
LLM as image parts through ``openheim acp``; a model without vision gets a note instead."""

from __future__ import annotations

import base64
import sys
from typing import Any

from openheim.testing import Reply, SentImage, sent_images
from tests.acp.client import open_agent
from tests.e2e.conftest import Home, request_messages
from tests.mcp.conftest import SERVER_APP

PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d494844520000000100000001")).decode()
#: What ``server_app.py --images``'s screenshot tool returns.
SCREENSHOT = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNg+P8/AAX+Av6n1qSxAAAAAElFTkSuQmCC"
)
SHOTS = {"name": "shots", "command": sys.executable, "args": [str(SERVER_APP), "--images"]}


def image_prompt(session_id: str, text: str) -> dict[str, Any]:
    blocks = [
        {"type": "text", "text": text},
        {"type": "image", "mimeType": "image/png", "data": PNG},
    ]
    return {"sessionId": session_id, "prompt": blocks}


async def test_an_acp_image_and_an_mcp_screenshot_reach_the_model(home: Home) -> None:
    home.write_config(extra_provider="vision = true")
    home.llm.script.extend(
        [Reply.tool_call("shots__screenshot", {}, id="call_shot"), Reply.text("A red dot.")]
    )
    async with open_agent(home) as agent:
        init = await agent.initialize()
        assert init["agentCapabilities"]["promptCapabilities"]["image"] is True
        session = await agent.new_session(home.workdir, mcpServers=[{**SHOTS, "env": []}])
        result = await agent.result("session/prompt", image_prompt(session, "What is this?"))
        assert result["stopReason"] == "end_turn"

    first = home.llm.requests[0]
    assert sent_images(first) == [SentImage("user", "image/png", PNG)]
    (user,) = [m for m in request_messages(home.llm, 0) if m["role"] == "user"]
    assert user["content"][0] == {"type": "text", "text": "What is this?"}
    # The tool result's image follows the tool message as a user message (OpenAI chat).
    second = request_messages(home.llm, 1)
    assert sent_images(home.llm.requests[1]) == [
        SentImage("user", "image/png", PNG),
        SentImage("user", "image/png", SCREENSHOT),
    ]
    roles = [m["role"] for m in second]
    assert roles == ["user", "assistant", "tool", "user"]
    assert second[3]["content"][0] == {
        "type": "text",
        "text": "[1 image from the result of shots__screenshot (call_shot)]",
    }
    # The history keeps both images.
    stored = home.only_history()["messages"]
    assert stored[0]["images"] == [{"mime_type": "image/png", "data": PNG}]
    assert stored[2]["images"] == [{"mime_type": "image/png", "data": SCREENSHOT}]


async def test_a_model_without_vision_gets_a_note_instead(home: Home) -> None:
    home.write_config(extra_provider="vision = false")
    home.llm.script.extend(
        [Reply.tool_call("shots__screenshot", {}, id="call_shot"), Reply.text("No eyes.")]
    )
    async with open_agent(home) as agent:
        await agent.initialize()
        session = await agent.new_session(home.workdir, mcpServers=[{**SHOTS, "env": []}])
        result = await agent.result("session/prompt", image_prompt(session, "Look"))
        assert result["stopReason"] == "end_turn"

    note = "[image omitted: model fake-model does not take images]"
    assert sent_images(home.llm.requests[1]) == []
    messages = request_messages(home.llm, 1)
    assert messages[0] == {"role": "user", "content": f"Look\n{note}"}
    assert messages[2]["role"] == "tool" and messages[2]["content"] == note


async def test_an_image_too_large_is_refused_with_a_clear_error(home: Home) -> None:
    big = base64.b64encode(b"\0" * (5 * 1024 * 1024 + 1)).decode()
    async with open_agent(home) as agent:
        await agent.initialize()
        session = await agent.new_session(home.workdir)
        blocks = [{"type": "image", "mimeType": "image/png", "data": big}]
        _, answer = await agent.call("session/prompt", {"sessionId": session, "prompt": blocks})
        assert answer["error"]["code"] == -32602
        assert "the image/png image is 5.0 MB, over the 5.0 MB limit" in answer["error"]["message"]
        tiff = [{"type": "image", "mimeType": "image/tiff", "data": PNG}]
        _, answer = await agent.call("session/prompt", {"sessionId": session, "prompt": tiff})
        assert "image/tiff is not an image type models take" in answer["error"]["message"]
    assert home.llm.requests == []
