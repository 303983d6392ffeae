"""Structured logs: JSON lines with their context, and secrets masked in every format."""

from __future__ import annotations

import contextvars
import json
import logging

import trio

from openheim.logs import JsonFormatter, TextFormatter, bind_log_context
from openheim.testing import Reply
from tests.e2e.conftest import API_KEY, Home, home
from tests.server.client import connect, server_process, write_server_config

__all__ = ["home"]


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("openheim.test", logging.WARNING, __file__, 1, message, args, None)


def test_json_lines_carry_the_context_and_mask_secrets() -> None:
    formatter = JsonFormatter(["sk-live-0123456789", "short"])

    def in_a_task() -> str:
        bind_log_context(tenant="alice", session_id="s-1")
        return formatter.format(record("key %s rejected, short stays", "sk-live-0123456789"))

    line = contextvars.copy_context().run(in_a_task)
    entry = json.loads(line)
    assert entry["msg"] == "key <redacted> rejected, short stays"
    assert (entry["level"], entry["logger"]) == ("warning", "openheim.test")
    assert (entry["tenant"], entry["session_id"]) == ("alice", "s-1")
    assert entry["ts"].endswith("Z")
    assert "tenant" not in json.loads(formatter.format(record("outside")))
    text = TextFormatter(["sk-live-0123456789"]).format(record("got sk-live-0123456789"))
    assert "sk-live" not in text and text.endswith("got <redacted>")


async def test_serve_with_json_logs_writes_only_json_with_ids_and_no_key(home: Home) -> None:
    write_server_config(home)
    home.llm.script.extend(
        [Reply.tool_call("execute_command", {"command": "echo hi"}), Reply.text("Done.")]
    )
    env = home.env(OPENHEIM_LOG="debug")
    async with server_process(home, "--log-format", "json", env=env) as server:
        async with connect(server.ws_url) as client:
            await client.initialize()
            session_id = await client.new_session(home.workdir)
            _, reply = await client.prompt(session_id, "go")
            assert reply["result"] == {"stopReason": "end_turn"}
        server.terminate()
        with trio.fail_after(10):
            await server.process.wait()
    lines = [line for line in server.stderr().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert entries[0]["msg"].startswith("openheim serving on ") and entries[0]["url"]
    assert any(e.get("session_id") == session_id and e.get("tenant") for e in entries)
    assert any("connection_id" in e for e in entries)
    assert API_KEY not in server.stderr()
