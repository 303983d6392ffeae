"""Reasoning models through `openheim run`: each format's thinking config goes out, its thoughts
come back apart from the answer, are stored, and go back in a tool loop only to their own
kind of provider. The fake server refuses what the real APIs refuse (a changed or missing
thinking block, ``reasoning_content`` sent back), so a clean run proves the round trip."""

from __future__ import annotations

from typing import Any

import pytest

from openheim.testing import Reply
from tests.e2e.conftest import Home

# The first line lands in [providers.fake]; the tables after it are providers of their own.
EXTRA = """reasoning_by_model = {{ "fake-model" = "high" }}

[providers.anthropic]
api_base = "{url}/v1"
default_model = "claude-test"
env_var = "FAKE_LLM_KEY"
reasoning = "medium"

[providers.gemini]
api_base = "{url}/v1beta"
default_model = "gemini-test"
env_var = "FAKE_LLM_KEY"
reasoning = "low"

[providers.responses]
kind = "openai_responses"
api_base = "{url}/v1"
default_model = "responses-test"
env_var = "FAKE_LLM_KEY"
reasoning = "medium"
"""

FIRST_THOUGHT = "The user wants the shell; echo is enough."
SECOND_THOUGHT = "The shell answered, so I can say so."


@pytest.fixture
def thinking(home: Home) -> Home:
    home.write_config(extra_provider=EXTRA.format(url=home.llm.url))
    home.llm.script.extend(
        [
            Reply.tool_call(
                "execute_command", {"command": "echo from-the-shell"}, thinking=FIRST_THOUGHT
            ),
            Reply.text("Done.", thinking=SECOND_THOUGHT),
        ]
    )
    return home


def _anthropic(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert first["max_tokens"] == 4096 + 8192
    assistant = second["messages"][1]
    assert assistant["role"] == "assistant"
    thinking, tool_use = assistant["content"]
    assert thinking["type"] == "thinking"
    assert thinking["thinking"] == FIRST_THOUGHT
    assert thinking["signature"]  # checked by the fake, which signed it
    assert tool_use["type"] == "tool_use"


def _openai(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert first["reasoning_effort"] == "high"
    assert "reasoning_content" not in str(second["messages"])
    assert FIRST_THOUGHT not in str(second["messages"])


def _gemini(first: dict[str, Any], second: dict[str, Any]) -> None:
    thinking = first["generationConfig"]["thinkingConfig"]
    assert thinking == {"thinkingBudget": 2048, "includeThoughts": True}
    model = second["contents"][1]
    assert model["role"] == "model"
    assert model["parts"][0] == {"text": FIRST_THOUGHT, "thought": True}
    assert "functionCall" in model["parts"][1]


def _responses(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert first["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert first["store"] is False
    assert first["include"] == ["reasoning.encrypted_content"]
    reasoning, call = second["input"][1:3]
    assert reasoning["type"] == "reasoning"
    assert reasoning["summary"][0]["text"] == FIRST_THOUGHT
    assert reasoning["encrypted_content"]  # checked by the fake, which encrypted it
    assert call["type"] == "function_call"


@pytest.mark.parametrize(
    ("model", "check"),
    [
        ("claude-test", _anthropic),
        ("fake/fake-model", _openai),
        ("gemini-test", _gemini),
        ("responses-test", _responses),
    ],
)
async def test_thoughts_stay_out_of_the_answer_and_go_back_in_the_tool_loop(
    thinking: Home, model: str, check: Any
) -> None:
    result = await thinking.run("run", "--model", model, "Use the shell")
    assert result.returncode == 0, result.stderr
    # `run` prints the answer alone: thoughts are in the history, not on either stream.
    assert result.stdout == "Done.\n"
    assert FIRST_THOUGHT not in result.stderr
    assert SECOND_THOUGHT not in result.stderr
    first, second = (request.body for request in thinking.llm.requests)
    check(first, second)
    messages = thinking.only_history()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["reasoning"]["text"] == FIRST_THOUGHT
    assert messages[3]["reasoning"]["text"] == SECOND_THOUGHT
    assert messages[3]["content"] == "Done."


async def test_thinking_blocks_go_only_to_the_kind_that_made_them(thinking: Home) -> None:
    assert (await thinking.run("run", "--model", "claude-test", "start")).returncode == 0
    thinking.llm.script.extend([Reply.text("Gemini continues.")])
    result = await thinking.run("run", "--continue", "--model", "gemini-test", "go on")
    assert result.returncode == 0, result.stderr
    contents = thinking.llm.requests[2].body["contents"]
    assert "signature" not in str(contents)
    assert FIRST_THOUGHT not in str(contents)
    assert not any(part.get("thought") for content in contents for part in content["parts"])


async def test_reasoning_items_go_only_to_the_responses_api(thinking: Home) -> None:
    assert (await thinking.run("run", "--model", "responses-test", "start")).returncode == 0
    stored = thinking.only_history()["messages"][1]["reasoning"]
    assert stored["format"] == "openai-responses"
    assert [block["type"] for block in stored["blocks"]] == ["reasoning"]
    assert stored["blocks"][0]["encrypted_content"]
    thinking.llm.script.extend([Reply.text("Claude continues.")])
    result = await thinking.run("run", "--continue", "--model", "claude-test", "go on")
    assert result.returncode == 0, result.stderr
    messages = thinking.llm.requests[2].body["messages"]
    assert "encrypted_content" not in str(messages)
    assert FIRST_THOUGHT not in str(messages)
