"""``GET /metrics`` scraped and parsed after real prompts: the counters say what happened."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from openheim import __version__
from openheim.testing import HttpError, Reply
from tests.e2e.conftest import Home, home
from tests.mcp.test_run_e2e import mcp_config_table
from tests.server.client import connect, running_server

__all__ = ["home"]

TOKENS = 'tokens = { "tok-alice-0123456789" = "alice" }'


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_a_tool_using_prompt(home: Home) -> None:
    home.llm.script.extend(
        [
            HttpError(503),
            Reply.tool_call("execute_command", {"command": "echo hi"}, id="call_1"),
            Reply.text("Done."),
        ]
    )
    async with (
        running_server(home, extra=mcp_config_table("tools")) as server,
        httpx.AsyncClient() as http,
    ):
        async with connect(server.ws_url) as client:
            await client.initialize()
            session_id = await client.new_session(home.workdir)
            _, reply = await client.prompt(session_id, "say hi")
            assert reply["result"] == {"stopReason": "end_turn"}
            response = await http.get(f"{server.url}/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            live = samples(response.text)
        after = samples((await http.get(f"{server.url}/metrics")).text)

    fake = {"provider": "fake", "model": "fake-model"}
    assert value(live, "openheim_provider_requests_total", **fake, outcome="ok") == 2
    assert value(live, "openheim_provider_requests_total", **fake, outcome="http_503") == 1
    assert value(live, "openheim_provider_retries_total", **fake) == 1
    assert value(live, "openheim_provider_request_seconds_count", **fake) == 3
    tenant = {"tenant": "local"}
    assert value(live, "openheim_turns_total", **tenant, **fake, stop_reason="end_turn") == 1
    assert value(live, "openheim_tokens_total", **tenant, **fake, kind="input") == 20
    assert value(live, "openheim_tokens_total", **tenant, **fake, kind="output") == 10
    ok_call = {"tenant": "local", "tool": "execute_command", "outcome": "ok"}
    assert value(live, "openheim_tool_calls_total", **ok_call) == 1
    assert value(live, "openheim_tool_call_seconds_count", tool="execute_command") == 1
    assert value(live, "openheim_sessions_open", **tenant) == 1
    assert value(live, "openheim_turns_running", **tenant) == 0
    assert value(live, "openheim_ws_connections", **tenant) == 1
    assert ("openheim_ws_outbound_queue_frames", frozenset(tenant.items())) in live
    assert value(live, "openheim_info", version=__version__) == 1
    assert ("openheim_mcp_server_up", frozenset({("server", "tools")})) in live
    assert ("openheim_mcp_server_restarts_total", frozenset({("server", "tools")})) in live
    # Present and 0, not missing (a missing series reads as "no data").
    assert after[("openheim_ws_connections", frozenset(tenant.items()))] == 0


async def test_with_tenant_tokens_metrics_need_their_own_token(home: Home) -> None:
    async with (
        running_server(home, f'{TOKENS}\nmetrics_token = "metrics-secret-42"') as server,
        httpx.AsyncClient() as http,
    ):
        url = f"{server.url}/metrics"
        tenant = await http.get(url, headers={"Authorization": "Bearer tok-alice-0123456789"})
        assert (tenant.status_code, tenant.json()["code"]) == (401, "unauthorized")
        assert (await http.get(url)).status_code == 401
        scraped = await http.get(url, headers={"Authorization": "Bearer metrics-secret-42"})
        assert scraped.status_code == 200 and "openheim_info" in scraped.text

    async with running_server(home, TOKENS) as server, httpx.AsyncClient() as http:
        refused = await http.get(f"{server.url}/metrics")
        assert refused.status_code == 403 and "metrics_token" in refused.json()["error"]

    env = home.env(OPENHEIM_METRICS_TOKEN="from-env-token-7")
    async with running_server(home, TOKENS, env=env) as server, httpx.AsyncClient() as http:
        url = f"{server.url}/metrics"
        scraped = await http.get(url, headers={"Authorization": "Bearer from-env-token-7"})
        assert scraped.status_code == 200
