"""``[server] max_rss_mb`` over ACP on a real server: refusals are retryable, and idle
sessions are saved, evicted and loaded back (docs/server.md, "Memory")."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from openheim.testing import Reply
from tests.e2e.conftest import Home, home
from tests.server.client import WsClient, connect, prompt_params, running_server
from tests.server.test_metrics import samples, value

__all__ = ["home"]

BUSY = "server busy: memory budget reached; retry in a few seconds"
#: A budget no process fits in; the test lifts it to set sessions up, then restores it.
TINY = "max_rss_mb = 1"
ROOMY = 1 << 50


def assert_busy(reply: dict[str, Any]) -> None:
    error = reply["error"]
    assert error["code"] == -32603 and error["message"] == BUSY, reply
    assert error["data"] == {"retryable": True}


async def new_session(client: WsClient, home: Home) -> dict[str, Any]:
    _, reply = await client.call("session/new", {"cwd": str(home.workdir), "mcpServers": []})
    return reply


async def test_over_the_budget_requests_are_refused_and_idle_sessions_evicted_after_a_save(
    home: Home, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="openheim.session.memory")
    home.llm.script.extend([Reply.text("Noted."), Reply.text("Still here.")])
    async with (
        running_server(home, TINY) as server,
        connect(server.ws_url, "/acp") as client,
        httpx.AsyncClient() as http,
    ):
        await client.initialize()
        assert_busy(await new_session(client, home))

        budget = server.state.tenants.memory
        assert budget is not None and budget.limit_bytes == 1024 * 1024
        budget.limit_bytes = ROOMY
        first = (await new_session(client, home))["result"]["sessionId"]
        _, reply = await client.prompt(first, "remember the number 7")
        assert reply["result"] == {"stopReason": "end_turn"}
        second = (await new_session(client, home))["result"]["sessionId"]

        budget.limit_bytes = 1024 * 1024
        _, reply = await client.prompt(first, "and now?")
        assert_busy(reply)
        (tenant,) = server.state.tenants.live()
        # The other session was idle: saved and evicted. The prompted one is not evicted
        # for its own prompt, but is by the next request.
        assert [session.id for session in tenant.registry.sessions()] == [first]
        assert_busy(await new_session(client, home))
        assert len(tenant.registry) == 0
        evicted = [r.getMessage() for r in caplog.records if "evicted" in r.getMessage()]
        assert len(evicted) == 2 and all("max_rss_mb" in line for line in evicted)
        scraped = samples((await http.get(f"{server.url}/metrics")).text)
        assert value(scraped, "openheim_sessions_evicted_total") == 2
        assert value(scraped, "openheim_busy_refusals_total") == 3

        budget.limit_bytes = ROOMY
        load = {"cwd": str(home.workdir), "mcpServers": []}
        replay, loaded = await client.call("session/load", {"sessionId": first, **load})
        assert "result" in loaded, loaded
        texts = [
            m["params"]["update"]["content"]["text"]
            for m in replay
            if m.get("method") == "session/update"
            and m["params"]["update"]["sessionUpdate"]
            in ("user_message_chunk", "agent_message_chunk")
        ]
        assert texts == ["remember the number 7", "Noted."]
        _, reply = await client.call("session/prompt", prompt_params(first, "and now?"))
        assert reply["result"] == {"stopReason": "end_turn"}
        _, loaded = await client.call("session/load", {"sessionId": second, **load})
        assert "result" in loaded, loaded
