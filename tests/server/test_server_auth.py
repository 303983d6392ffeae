"""Tokens, tenants and origins on a real server: who may connect, and what each one sees."""

from __future__ import annotations

import json

import httpx
import pytest
from trio_websocket import ConnectionClosed

from openheim.testing import Reply
from tests.e2e.conftest import Home, home
from tests.server.client import connect, running_server

__all__ = ["home"]

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef"
TOKENS = f'tokens = {{ "{ALICE}" = "alice", "{BOB}" = "bob" }}'
#: A WebSocket upgrade request by hand (trio-websocket leaks its socket when refused).
UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def closed_code(url: str, path: str, **kwargs: object) -> int:
    async with connect(url, path, greet=False, **kwargs) as client:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            await client.ws.get_message()
    return closed.value.reason.code


async def test_missing_or_unknown_tokens_are_refused(home: Home) -> None:
    async with running_server(home, TOKENS) as server, httpx.AsyncClient() as http:
        for headers in ({}, bearer("not-a-known-token-000000"), {"Authorization": ALICE}):
            response = await http.get(f"{server.url}/api/sessions", headers=headers)
            assert response.status_code == 401
            assert response.json()["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        assert (await http.get(f"{server.url}/healthz")).json() == {"status": "ok"}
        assert (await http.get(f"{server.url}/api/sessions", headers=bearer(ALICE))).json() == []

        assert await closed_code(server.ws_url, "/ws") == 4401
        assert await closed_code(server.ws_url, "/acp", token="wrong-token-0123456789") == 4401
        async with connect(server.ws_url, "/ws", token=ALICE) as client:
            assert (await client.initialize())["protocolVersion"] == 1
        async with connect(f"{server.ws_url}", f"/acp?token={BOB}") as client:
            assert (await client.initialize())["protocolVersion"] == 1


async def test_tenants_never_see_each_other(home: Home) -> None:
    home.llm.script.append(Reply.text("Hello Alice."))
    async with running_server(home, TOKENS) as server, httpx.AsyncClient() as http:
        async with connect(server.ws_url, token=ALICE) as alice:
            await alice.initialize()
            alice_root = home.workdir / "alice"
            session_id = await alice.new_session(alice_root)
            _, response = await alice.prompt(session_id, "hi")
            assert response["result"] == {"stopReason": "end_turn"}
            await alice.send_fs({"action": "write", "path": "secret.txt", "content": "s3cret"})
            assert (await alice.receive_fs())["type"] == "write_success"
            assert (alice_root / "secret.txt").read_text() == "s3cret"

            async with connect(server.ws_url, token=BOB) as bob:
                await bob.initialize()
                # Bob's sessions must live in his own workspace.
                _, response = await bob.call(
                    "session/new", {"cwd": str(alice_root), "mcpServers": []}
                )
                assert response["error"]["code"] == -32602
                assert (await bob.result("session/list", {}))["sessions"] == []
                load = {"sessionId": session_id, "cwd": str(home.workdir / "bob"), "mcpServers": []}
                _, response = await bob.call("session/load", load)
                assert response["error"]["code"] == -32002
                _, response = await bob.call(
                    "session/prompt",
                    {"sessionId": session_id, "prompt": [{"type": "text", "text": "x"}]},
                )
                assert response["error"]["code"] == -32002
                for path in (str(alice_root / "secret.txt"), "../alice/secret.txt"):
                    await bob.send_fs({"action": "read", "path": path})
                    reply = await bob.receive_fs()
                    assert reply["type"] == "error", reply

        bob_list = await http.get(f"{server.url}/api/sessions", headers=bearer(BOB))
        assert bob_list.json() == []
        detail = await http.get(f"{server.url}/api/sessions/{session_id}", headers=bearer(BOB))
        assert detail.status_code == 404
        alice_list = await http.get(f"{server.url}/api/sessions", headers=bearer(ALICE))
        assert [meta["id"] for meta in alice_list.json()] == [session_id]

    stored = home.path / "tenants" / "alice" / "history" / f"{session_id}.json"
    assert json.loads(stored.read_text())["meta"]["cwd"] == str(alice_root)
    # Nothing of a tenant is open to other users of the machine either.
    assert stored.stat().st_mode & 0o777 == 0o600
    for folder in (stored.parent, stored.parent.parent, home.path / "tenants", alice_root):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert not (home.path / "history").exists()


async def test_browsers_are_held_to_allowed_origins(home: Home) -> None:
    async with running_server(home, 'allowed_origins = ["https://app.example.com"]') as server:
        async with httpx.AsyncClient() as http:
            evil = await http.get(
                f"{server.url}/api/models", headers={"Origin": "https://evil.example"}
            )
            assert evil.status_code == 403
            assert evil.extensions["reason_phrase"] == b"Forbidden"
            assert "access-control-allow-origin" not in evil.headers
            rebound = await http.get(f"{server.url}/api/models", headers={"Host": "evil.example"})
            assert rebound.status_code == 403
            for origin in ("http://localhost:5173", "https://app.example.com"):
                ok = await http.get(f"{server.url}/api/models", headers={"Origin": origin})
                assert ok.status_code == 200
                assert ok.extensions["reason_phrase"] == b"OK"
                assert ok.headers["access-control-allow-origin"] == origin
            plain = await http.get(f"{server.url}/api/models")
            assert "access-control-allow-origin" not in plain.headers
            preflight = await http.options(
                f"{server.url}/api/sessions",
                headers={
                    "Origin": "https://app.example.com",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            assert preflight.status_code == 204
            assert preflight.extensions["reason_phrase"] == b"No Content"
            assert "content-type" not in preflight.headers
            assert preflight.headers["access-control-allow-headers"] == "Authorization"

            upgrade = await http.get(
                f"{server.url}/ws", headers={**UPGRADE, "Origin": "https://evil.example"}
            )
            assert upgrade.status_code == 403
            assert upgrade.json()["code"] == "forbidden"
        async with connect(server.ws_url, headers=[(b"origin", b"http://127.0.0.1:8080")]) as ok:
            assert (await ok.initialize())["protocolVersion"] == 1


async def test_serve_refuses_a_public_address_without_tokens(home: Home) -> None:
    result = await home.run("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("openheim: error: refusing to serve on 0.0.0.0 without tokens")
    assert "[server] tokens" in lines[0]


async def test_a_public_address_is_fine_with_tokens(home: Home) -> None:
    from openheim.config.load import load_config
    from openheim.config.paths import Paths
    from openheim.server.app import open_server
    from tests.server.client import write_server_config

    write_server_config(home, TOKENS)
    config = load_config(home.path / "config.toml")
    async with open_server(config, Paths(home.path), env=home.env(), host="0.0.0.0", port=0) as s:
        assert s.url.startswith("http://0.0.0.0:")


async def test_tenants_may_not_start_mcp_servers_unless_the_operator_allows(home: Home) -> None:
    stdio = {"name": "mine", "command": "/bin/true", "args": [], "env": []}
    remote = {"type": "http", "name": "web", "url": "http://127.0.0.1:9/mcp", "headers": []}
    cases = {
        "": {"stdio": False, "http": False},  # tokens on: none by default
        'client_mcp_servers = "http"': {"stdio": False, "http": True},
        'client_mcp_servers = "all"': {"stdio": True, "http": True},
    }
    for setting, allowed in cases.items():
        async with (
            running_server(home, f"{TOKENS}\n{setting}") as server,
            connect(server.ws_url, token=ALICE) as alice,
        ):
            await alice.initialize()
            for kind, entry in (("stdio", stdio), ("http", remote)):
                params = {"cwd": str(home.workdir / "alice"), "mcpServers": [entry]}
                _, response = await alice.call("session/new", params)
                if allowed[kind]:
                    assert "result" in response, (setting, kind, response)
                else:
                    error = response["error"]
                    assert error["code"] == -32602, (setting, kind, response)
                    assert "client_mcp_servers" in error["message"]
