"""`openheim run` against the Anthropic, Gemini and OpenAI Responses formats, and one
conversation moving between providers."""

from __future__ import annotations

import pytest

from openheim.foundation.models import Usage
from openheim.testing import Reply
from tests.e2e.conftest import API_KEY, Home

EXTRA = """
[providers.anthropic]
api_base = "{url}/v1"
default_model = "claude-test"
env_var = "FAKE_LLM_KEY"
retry_initial_delay_secs = 0.05

[providers.gemini]
api_base = "{url}/v1beta"
default_model = "gemini-test"
env_var = "FAKE_LLM_KEY"
retry_initial_delay_secs = 0.05

[providers.responses]
kind = "openai_responses"
api_base = "{url}/v1"
default_model = "responses-test"
env_var = "FAKE_LLM_KEY"
retry_initial_delay_secs = 0.05
"""


@pytest.fixture
def multi(home: Home) -> Home:
    home.write_config(extra_provider=EXTRA.format(url=home.llm.url))
    return home


@pytest.mark.parametrize(
    ("model", "path", "key_header"),
    [
        ("claude-test", "/v1/messages", "x-api-key"),
        ("gemini-test", "/v1beta/models/gemini-test:streamGenerateContent", "x-goog-api-key"),
    ],
)
async def test_two_step_tool_task(multi: Home, model: str, path: str, key_header: str) -> None:
    multi.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo from-the-shell"}),
            Reply.text("The shell said from-the-shell."),
        ]
    )
    result = await multi.run("run", "--model", model, "Use the shell")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The shell said from-the-shell.\n"
    first, second = multi.llm.requests
    assert first.path == second.path == path
    assert first.headers[key_header] == API_KEY
    assert "from-the-shell" in str(second.body)  # the tool result went back
    document = multi.only_history()
    assert document["meta"]["provider"] == model.split("-")[0].replace("claude", "anthropic")
    assert [m["role"] for m in document["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert document["messages"][2]["content"] == "from-the-shell"


async def test_two_step_tool_task_over_the_responses_api(multi: Home) -> None:
    multi.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo from-the-shell"}),
            Reply.text("The shell said from-the-shell."),
        ]
    )
    result = await multi.run("run", "--model", "responses-test", "Use the shell")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The shell said from-the-shell.\n"
    first, second = multi.llm.requests
    assert first.path == second.path == "/v1/responses"
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.body["store"] is False
    kinds = [item["type"] for item in second.body["input"]]
    assert kinds == ["message", "function_call", "function_call_output"]
    assert second.body["input"][2]["output"] == "from-the-shell"
    document = multi.only_history()
    assert document["meta"]["provider"] == "responses"
    assert [m["role"] for m in document["messages"]] == ["user", "assistant", "tool", "assistant"]


async def test_one_conversation_across_three_providers(multi: Home) -> None:
    multi.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo step-one"}),
            Reply.text("Anthropic saw step-one."),
            Reply.text("Gemini continues."),
            Reply.text("OpenAI finishes."),
        ]
    )
    assert (await multi.run("run", "--model", "claude-test", "start")).returncode == 0
    conversation_id = multi.only_history()["meta"]["id"]

    result = await multi.run("run", "--resume", conversation_id, "--model", "gemini-test", "go")
    assert result.returncode == 0, result.stderr
    gemini = multi.llm.requests[2]
    assert gemini.path.startswith("/v1beta/models/gemini-test")
    roles = [content["role"] for content in gemini.body["contents"]]
    assert roles == ["user", "model", "user", "model", "user"]
    assert "step-one" in str(gemini.body["contents"][2])

    result = await multi.run("run", "--continue", "--model", "fake/fake-model", "end")
    assert result.returncode == 0, result.stderr
    openai = multi.llm.requests[3]
    assert openai.path == "/v1/chat/completions"
    assert [m["role"] for m in openai.body["messages"] if m["role"] != "system"] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    document = multi.only_history()
    assert document["meta"]["provider"] == "fake"
    assert len(document["messages"]) == 8
    # Usage from all four replies (default 10 in / 5 out each) adds up across providers.
    assert document["meta"]["usage"]["input_tokens"] == 40
    assert document["meta"]["usage"]["output_tokens"] == 20


async def test_history_usage_and_cost_match_the_server_with_cache_tokens(multi: Home) -> None:
    config = multi.path / "config.toml"
    config.write_text(
        config.read_text()
        + """
[providers.anthropic.prices.claude-test]
input = 3.0
output = 15.0
cache_read = 0.3
cache_write = 3.75
"""
    )
    usage = Usage(
        input_tokens=1500, output_tokens=40, cache_read_tokens=1000, cache_write_tokens=200
    )
    multi.llm.script.extend([Reply.text("cached answer", usage=usage)])
    result = await multi.run("run", "--model", "claude-test", "hi")
    assert result.returncode == 0, result.stderr
    meta = multi.only_history()["meta"]
    assert meta["usage"] == {
        "input_tokens": 1500,
        "output_tokens": 40,
        "cache_read_tokens": 1000,
        "cache_write_tokens": 200,
    }
    expected = (300 * 3.0 + 1000 * 0.3 + 200 * 3.75 + 40 * 15.0) / 1e6
    assert meta["cost_usd"] == pytest.approx(expected)
