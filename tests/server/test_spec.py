"""OPENHEIM_SPEC.md against the code: JSON parses; routes, fs actions, ACP methods match."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from openheim.acp import connection as connection_module
from openheim.acp.methods import AgentMethods
from openheim.server.fs import channel as fs
from openheim.server.rest import create_rest_app

SPEC = Path(__file__).resolve().parents[2] / "OPENHEIM_SPEC.md"

REST_HEADING = re.compile(r"^#{2,4} GET (/\S*)\s*$")
FS_ACTION_HEADING = re.compile(r"^#{2,4} Action `([^`]+)`\s*$")
CLIENT_METHOD_HEADING = re.compile(r"^#{2,4} `([^`]+)` \(client → agent\)\s*$")
AGENT_METHOD_HEADING = re.compile(r"^#{2,4} `([^`]+)` \(agent → client\)\s*$")


def spec_lines() -> list[str]:
    return SPEC.read_text(encoding="utf-8").splitlines()


def json_blocks() -> list[tuple[int, str]]:
    """(line number of the opening fence, body) of every ```json block."""
    blocks: list[tuple[int, str]] = []
    start: int | None = None
    body: list[str] = []
    in_other = False
    for number, line in enumerate(spec_lines(), start=1):
        stripped = line.strip()
        if start is not None:
            if stripped == "```":
                blocks.append((start, "\n".join(body)))
                start, body = None, []
            else:
                body.append(line)
        elif in_other:
            in_other = stripped != "```"
        elif stripped == "```json":
            start = number
        elif stripped.startswith("```"):
            in_other = True
    assert start is None, f"unclosed ```json block at line {start}"
    return blocks


def parsed_blocks() -> list[tuple[int, Any]]:
    return [(line, json.loads(body)) for line, body in json_blocks()]


def headings(pattern: re.Pattern[str]) -> set[str]:
    return {m.group(1) for line in spec_lines() if (m := pattern.match(line))}


def walk(value: Any) -> list[dict[str, Any]]:
    """Every object in a JSON value, nested ones included."""
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def normalize_route(route: str) -> str:
    return re.sub(r"<[^>]*>|\{[^}]*\}", "{}", route)


def server_routes() -> set[str]:
    app = create_rest_app(SimpleNamespace(config=None))  # type: ignore[arg-type]
    return {
        normalize_route(rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and "GET" in (rule.methods or ())
    }


def dispatcher_methods() -> set[str]:
    """Requests in the agent's handler table."""
    return set(AgentMethods(None).table())  # type: ignore[arg-type]


def dispatcher_notifications() -> set[str]:
    """Notifications the connection acts on (``_notified``'s comparisons)."""
    source = Path(connection_module.__file__).read_text(encoding="utf-8")
    return set(re.findall(r'message\.method == "([^"]+)"', source))


def acp_sources() -> str:
    """Every module of the agent's side of ACP: where the methods it sends are named."""
    folder = Path(connection_module.__file__).parent
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.py")))


# --- tests -----------------------------------------------------------------------------------


def test_json_blocks_parse() -> None:
    blocks = json_blocks()
    assert len(blocks) > 40
    for line, body in blocks:
        try:
            json.loads(body)
        except json.JSONDecodeError as exc:
            pytest.fail(f"OPENHEIM_SPEC.md: the ```json block at line {line} is invalid: {exc}")


def test_rest_routes_match_the_server() -> None:
    documented = {normalize_route(route) for route in headings(REST_HEADING)}
    served = server_routes()
    assert served, "no routes found in the REST app"
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not documented"


def test_fs_actions_match_the_channel() -> None:
    accepted = set(fs._ACTIONS)
    documented = headings(FS_ACTION_HEADING)
    assert documented == accepted
    for line, value in parsed_blocks():
        for obj in walk(value):
            action = obj.get("action")
            if action is not None:
                assert action in accepted, f"line {line}: unknown fs action {action!r}"


def test_acp_methods_match_the_dispatcher() -> None:
    handled = dispatcher_methods() | dispatcher_notifications()
    assert "session/prompt" in handled and "session/cancel" in handled
    documented = headings(CLIENT_METHOD_HEADING)
    assert documented - handled == set(), "documented but not handled by the dispatcher"
    assert handled - documented == set(), "handled by the dispatcher but not documented"

    source = acp_sources()
    sent = headings(AGENT_METHOD_HEADING)
    assert {"session/update", "session/request_permission"} <= sent
    for method in sent:
        assert f'"{method}"' in source, f"{method} is never sent by the dispatcher"

    # Every method in a JSON example is one of the documented ones.
    known = documented | sent
    for line, value in parsed_blocks():
        for obj in walk(value):
            method = obj.get("method")
            if isinstance(method, str) and obj.get("jsonrpc") == "2.0":
                assert method in known, f"line {line}: undocumented method {method!r}"
