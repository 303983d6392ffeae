"""``/acp`` over plain HTTP, by hand: which stream carries what, the RFD's status codes,
tokens, DELETE, keepalives, buffering and backpressure, shutdown and HTTP/2."""

from __future__ import annotations

import uuid

import attrs

from openheim.acp.outbox import MERGED_TEXT_LIMIT
from openheim.testing import Reply, TextChunk
from tests.acp_http.raw import INITIALIZE, raw_client, rpc
from tests.acp_http.test_sdk_remote import ALICE, BOB, TOKENS
from tests.e2e.conftest import Home, home
from tests.server.client import running_server
from tests.server.test_metrics import samples, value
from tests.waiting import wait_until

__all__ = ["home"]


def prompt(request_id: int, session_id: str, text: str) -> dict[str, object]:
    params = {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
    return rpc(request_id, "session/prompt", params)


async def test_each_stream_carries_what_the_rfd_puts_on_it(home: Home) -> None:
    home.llm.script.append(Reply.text("Hello over SSE."))
    async with running_server(home) as server, raw_client(server.url) as client:
        init = await client.initialize()
        assert init["id"] == 1 and init["result"]["protocolVersion"] == 1
        uuid.UUID(client.connection_id)
        main = await client.stream()
        assert main.status == 200
        await client.send(rpc(2, "session/new", {"cwd": str(home.workdir), "mcpServers": []}))
        before, created = await main.until(2)
        assert before == []
        session_id = created["result"]["sessionId"]
        # What followed the answer waited for the session's stream, opened only now.
        session = await client.stream(session_id)
        offered = await session.message()
        assert offered["params"]["update"]["sessionUpdate"] == "available_commands_update"
        await client.send(prompt(3, session_id, "hi"), session_id)
        updates, answer = await session.until(3)
        assert answer["result"] == {"stopReason": "end_turn"}
        said = "".join(
            m["params"]["update"]["content"]["text"]
            for m in updates
            if m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
        )
        assert said == "Hello over SSE."
        # Nothing of the session went on the connection stream: session/list is next there.
        await client.send(rpc(4, "session/list", {}))
        assert (await main.message())["id"] == 4


async def test_the_rfd_status_codes(home: Home) -> None:
    async with running_server(home) as server, raw_client(server.url) as client:
        http, url = client.http, client.url

        async def status(method: str, **kwargs: object) -> tuple[int, str]:
            response = await http.request(method, url, **kwargs)  # type: ignore[arg-type]
            code = response.json()["code"] if response.content else ""
            return response.status_code, code

        new = rpc(2, "session/new", {"cwd": str(home.workdir), "mcpServers": []})
        # Before initialize there is no connection to post to.
        assert await status("POST", json=new) == (400, "missing_connection_id")
        assert await status("GET", headers={"Accept": "text/event-stream"}) == (
            400,
            "missing_connection_id",
        )
        assert await status("DELETE") == (400, "missing_connection_id")
        nobody = {"Acp-Connection-Id": str(uuid.uuid4())}
        assert await status("POST", json=new, headers=nobody) == (404, "unknown_connection")
        assert await status("GET", headers={**nobody, "Accept": "text/event-stream"}) == (
            404,
            "unknown_connection",
        )
        assert await status("DELETE", headers=nobody) == (404, "unknown_connection")

        await client.initialize()
        ids = client.ids()
        assert await status("POST", json=[new], headers=ids) == (501, "batch_not_supported")
        bad = {**ids, "Content-Type": "application/json"}
        assert await status("POST", content=b"{not json", headers=bad) == (400, "parse_error")
        assert await status("POST", content=b"7", headers=bad) == (400, "invalid_request")
        text = {**ids, "Content-Type": "text/plain"}
        assert await status("POST", content=b"{}", headers=text) == (415, "unsupported_media_type")
        json_only = {**ids, "Accept": "application/json"}
        assert await status("GET", headers=json_only) == (406, "not_acceptable")
        assert await status("PUT", headers=ids) == (405, "method_not_allowed")
        stranger = str(uuid.uuid4())
        cancel = rpc(None, "session/cancel", {"sessionId": stranger})
        assert await status("POST", json=cancel, headers=ids) == (400, "missing_session_id")
        named = client.ids(stranger)
        assert await status("POST", json=cancel, headers=named) == (404, "unknown_session")
        assert await status("GET", headers={**named, "Accept": "text/event-stream"}) == (
            404,
            "unknown_session",
        )
        other = client.ids(str(uuid.uuid4()))
        assert await status("POST", json=cancel, headers=other) == (400, "session_mismatch")

        # A bad message with a connection is the dispatcher's: JSON-RPC's error, on the stream.
        main = await client.stream()
        await client.send({"jsonrpc": "2.0", "id": 9})
        assert (await main.message())["error"]["code"] == -32600


async def test_tokens_and_tenants(home: Home) -> None:
    async with (
        running_server(home, TOKENS) as server,
        raw_client(server.url, {"Authorization": f"Bearer {ALICE}"}) as alice,
    ):
        for headers in ({}, {"Authorization": "Bearer not-a-known-token-000000"}):
            response = await alice.http.post(alice.url, json=INITIALIZE, headers=headers)
            assert response.status_code == 401
            assert response.json()["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        await alice.initialize()
        # Bob's token with Alice's connection id: as unknown as a made-up id.
        as_bob = {**alice.ids(), "Authorization": f"Bearer {BOB}"}
        list_ = rpc(2, "session/list", {})
        response = await alice.http.post(alice.url, json=list_, headers=as_bob)
        assert response.status_code == 404
        response = await alice.http.get(
            alice.url, headers={**as_bob, "Accept": "text/event-stream"}
        )
        assert response.status_code == 404
        assert (await alice.http.delete(alice.url, headers=as_bob)).status_code == 404
        main = await alice.stream()
        await alice.send(list_)
        assert (await main.message())["result"] == {"sessions": []}


async def test_delete_ends_the_connection_and_its_streams(home: Home) -> None:
    async with running_server(home) as server, raw_client(server.url) as client:
        await client.initialize()
        main = await client.stream()
        scrape = await client.http.get(f"{server.url}/metrics")
        live = samples(scrape.text)
        assert value(live, "openheim_connections", tenant="local", transport="http") == 1
        assert value(live, "openheim_ws_connections", tenant="local") == 0
        response = await client.http.delete(client.url, headers=client.ids())
        assert response.status_code == 202
        assert await main.ended()
        response = await client.post(rpc(2, "session/list", {}))
        assert response.status_code == 404
        await wait_until(lambda: not server.state.connections, what="the connection to end")
        scrape = await client.http.get(f"{server.url}/metrics")
        assert (
            value(samples(scrape.text), "openheim_connections", transport="http", tenant="local")
            == 0
        )


async def test_an_idle_stream_gets_keepalive_comments(home: Home) -> None:
    async with running_server(home) as server, raw_client(server.url) as client:
        settings = server.state.connection_settings
        server.state.connection_settings = attrs.evolve(settings, sse_keepalive=0.05)
        await client.initialize()
        main = await client.stream()
        assert await main.line() == ": keepalive"
        assert await main.line() == ""


async def test_a_stream_nobody_opens_fills_and_ends_the_connection(home: Home) -> None:
    # 300 chunks: more than a stream's outbox holds (128) while its GET never comes. Each is
    # over half a merged chunk's limit, so waiting chunks cannot merge into fewer places.
    piece = "w" * (MERGED_TEXT_LIMIT // 2 + 1)
    home.llm.script.append(Reply([TextChunk(piece)] * 300))
    async with (
        running_server(home, "slow_client_timeout_secs = 0.5") as server,
        raw_client(server.url) as client,
    ):
        await client.initialize()
        main = await client.stream()
        await client.send(rpc(2, "session/new", {"cwd": str(home.workdir), "mcpServers": []}))
        session_id = (await main.until(2))[1]["result"]["sessionId"]
        await client.send(prompt(3, session_id, "talk a lot"), session_id)
        # Its session stream never opened: after the slow-client timeout the connection ends.
        assert await main.ended()
        assert (await client.post(rpc(4, "session/list", {}))).status_code == 404


async def test_shutdown_answers_the_prompt_then_ends_the_streams(home: Home) -> None:
    home.llm.script.append(
        Reply.tool_call("execute_command", {"command": "sleep 30"}, id="call_sleep")
    )
    async with raw_client("") as client:  # it outlives the server: it reads the last events
        async with running_server(home) as server:
            client.url = f"{server.url}/acp"
            await client.initialize()
            main = await client.stream()
            await client.send(rpc(2, "session/new", {"cwd": str(home.workdir), "mcpServers": []}))
            session_id = (await main.until(2))[1]["result"]["sessionId"]
            session = await client.stream(session_id)
            await client.send(prompt(3, session_id, "nap"), session_id)
            while (await session.message()).get("params", {}).get("update", {}).get(
                "status"
            ) != "in_progress":
                pass
        _, answer = await session.until(3)
        assert answer["result"] == {"stopReason": "cancelled"}
        assert await session.ended()
        assert await main.ended()


async def test_http2_without_tls_by_prior_knowledge(home: Home) -> None:
    home.llm.script.append(Reply.text("Hello over h2c."))
    async with (
        running_server(home) as server,
        raw_client(server.url, http1=False, http2=True) as client,
    ):
        response = await client.http.post(client.url, json=INITIALIZE)
        assert response.http_version == "HTTP/2"
        client.connection_id = response.headers["acp-connection-id"]
        main = await client.stream()
        await client.send(rpc(2, "session/new", {"cwd": str(home.workdir), "mcpServers": []}))
        session_id = (await main.until(2))[1]["result"]["sessionId"]
        session = await client.stream(session_id)
        await client.send(prompt(3, session_id, "hi"), session_id)
        _, answer = await session.until(3)
        assert answer["result"] == {"stopReason": "end_turn"}


async def test_the_rfd_resume_flow_opens_the_session_stream_before_loading(home: Home) -> None:
    home.llm.script.extend([Reply.text("First."), Reply.text("Second.")])
    async with running_server(home) as server:
        async with raw_client(server.url) as first:
            await first.initialize()
            main = await first.stream()
            await first.send(rpc(2, "session/new", {"cwd": str(home.workdir), "mcpServers": []}))
            session_id = (await main.until(2))[1]["result"]["sessionId"]
            session = await first.stream(session_id)
            await first.send(prompt(3, session_id, "one"), session_id)
            await session.until(3)
            assert (await first.http.delete(first.url, headers=first.ids())).status_code == 202
        async with raw_client(server.url) as then:
            await then.initialize()
            main = await then.stream()
            session = await then.stream(session_id)  # the tenant's session: allowed before load
            assert session.status == 200
            load = rpc(2, "session/load", {"sessionId": session_id, "cwd": str(home.workdir)})
            await then.send({**load, "params": {**load["params"], "mcpServers": []}}, session_id)
            assert (await main.until(2))[1]["result"]["configOptions"]
            replay = [await session.message() for _ in range(2)]
            kinds = [m["params"]["update"]["sessionUpdate"] for m in replay]
            assert kinds == ["user_message_chunk", "agent_message_chunk"]
            await then.send(prompt(3, session_id, "two"), session_id)
            _, answer = await session.until(3)
            assert answer["result"] == {"stopReason": "end_turn"}
