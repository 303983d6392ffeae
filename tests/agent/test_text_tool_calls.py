import json

import pytest

from openheim.agent.text_tool_calls import recover_tool_calls

KNOWN = {"read_file", "execute_command"}


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "read_file", "arguments": {"path": "a.txt"}}',
        '  {"name": "read_file", "parameters": {"path": "a.txt"}}\n',
        '```json\n{"name": "read_file", "arguments": {"path": "a.txt"}}\n```',
        '{"name": "read_file", "arguments": "{\\"path\\": \\"a.txt\\"}"}',
        '{"type": "function", "function": {"name": "read_file", "arguments": {"path": "a.txt"}}}',
    ],
)
def test_exact_json_calls_are_recovered(text: str) -> None:
    (call,) = recover_tool_calls(text, KNOWN, "p")
    assert call.id == "p_0" and call.name == "read_file"
    assert json.loads(call.arguments) == {"path": "a.txt"}


def test_a_list_of_calls() -> None:
    text = json.dumps(
        [
            {"name": "read_file", "arguments": {"path": "a"}},
            {"name": "execute_command", "arguments": {"command": "ls"}},
        ]
    )
    assert [c.name for c in recover_tool_calls(text, KNOWN, "p")] == [
        "read_file",
        "execute_command",
    ]


@pytest.mark.parametrize(
    "text",
    [
        'Sure! Here is the call: {"name": "read_file", "arguments": {}}',
        '{"name": "delete_everything", "arguments": {}}',
        '{"name": "read_file", "arguments": {}, "explanation": "extra keys mean prose-like JSON"}',
        '{"name": "read_file", "arguments": [1, 2]}',
        '{"answer": 42}',
        "[]" + "x",
        '{"name": "read_file", "arguments": {"path": "a.txt"}',
        '[{"name": "read_file", "arguments": {}}, "text"]',
    ],
)
def test_anything_else_stays_text(text: str) -> None:
    assert recover_tool_calls(text, KNOWN, "p") == ()
