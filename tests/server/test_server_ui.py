"""The browser UI's files and the browser-safe ways in: tokenless static files under a strict
CSP, the token as a WebSocket subprotocol, and the tenant's workspace over REST."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from openheim.server.auth import protocol_token
from openheim.server.ui_assets import asset_file, content_security_policy
from tests.e2e.conftest import Home, home
from tests.server.client import GREETING, running_server

__all__ = ["home"]

ALICE = "alice-token-0123456789abcdef"
TOKENS = f'tokens = {{ "{ALICE}" = "alice" }}'
SANDBOX = '[sandbox]\nmode = "none"\nallow_unsandboxed_tenants = true\n'


def bearer_protocol(token: str) -> str:
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return f"openheim.bearer.{encoded}"


async def test_the_page_and_its_assets_load_without_a_token_under_a_strict_csp(
    home: Home,
) -> None:
    async with (
        running_server(home, TOKENS, extra=SANDBOX) as server,
        httpx.AsyncClient() as http,
    ):
        page = await http.get(f"{server.url}/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        host = server.url.removeprefix("http://")
        csp = page.headers["content-security-policy"]
        assert csp == content_security_policy(host)
        for directive in (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "frame-ancestors 'none'",
        ):
            assert directive in csp.split("; ")
        assert "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"

        script = await http.get(f"{server.url}/ui/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["content-security-policy"] == csp

        for missing in ("/ui/nothing.js", "/ui/.hidden.js", "/ui/%2e%2e/rest.py", "/ui/x.py"):
            response = await http.get(f"{server.url}{missing}")
            assert response.status_code == 404, missing
        # The data stays behind the token.
        assert (await http.get(f"{server.url}/api/workspace")).status_code == 401


def test_asset_names_cannot_climb_out() -> None:
    assert asset_file("app.js") is not None
    for name in ("../rest.py", "a/../../x.js", ".env", "app.js/", "app", "x.py", "/etc/x.js"):
        assert asset_file(name) is None, name
    assert "ws: wss:" in content_security_policy("evil host\r\nX: y")


async def test_the_workspace_route_names_the_tenant_and_its_root(home: Home) -> None:
    async with (
        running_server(home, TOKENS, extra=SANDBOX) as server,
        httpx.AsyncClient() as http,
    ):
        response = await http.get(
            f"{server.url}/api/workspace", headers={"Authorization": f"Bearer {ALICE}"}
        )
        assert response.json() == {"tenant": "alice", "root": str(home.workdir / "alice")}


async def test_a_browser_passes_its_token_as_a_subprotocol(home: Home) -> None:
    async with running_server(home, TOKENS, extra=SANDBOX) as server:
        async with open_websocket_url(
            f"{server.ws_url}/ws", subprotocols=["openheim.v1", bearer_protocol(ALICE)]
        ) as ws:
            assert ws.subprotocol == "openheim.v1"  # the token is never echoed
            with trio.fail_after(10):
                assert json.loads(await ws.get_message()) == GREETING

        for offered in (["openheim.v1", bearer_protocol("wrong-token-0123456789")], ["x"]):
            async with open_websocket_url(f"{server.ws_url}/ws", subprotocols=offered) as ws:
                with pytest.raises(ConnectionClosed) as closed, trio.fail_after(10):
                    await ws.get_message()
                assert closed.value.reason.code == 4401
                await ws._stream.aclose()  # trio-websocket leaks it when the server closes


def test_protocol_tokens_decode_with_or_without_padding() -> None:
    assert protocol_token([bearer_protocol("tok-with-ünïcode-000")]) == "tok-with-ünïcode-000"
    assert protocol_token(["openheim.v1", "openheim.bearer.YWJj"]) == "abc"
    assert protocol_token(["openheim.bearer.YWJj=="]) == "abc"
    assert protocol_token(["openheim.bearer.%%%"]) is None
    assert protocol_token(["openheim.bearer."]) is None
    assert protocol_token(["openheim.v1"]) is None
