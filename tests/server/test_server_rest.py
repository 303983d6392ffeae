"""REST routes on a real server: shapes, secrets kept out, sessions, errors."""

from __future__ import annotations

import json

import httpx
import trio

from openheim.foundation.redact import redact_args, strip_url_credentials
from openheim.testing import Reply
from tests.e2e.conftest import API_KEY, Home, home
from tests.server.client import connect, running_server

__all__ = ["home"]

INLINE_KEY = "sk-inline-SECRET-abcdef0123456789"
MCP_EXTRA = f"""api_key = "{INLINE_KEY}"

[mcp_servers.files]
command = "/nonexistent/npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv/data",
        "--api-key", "sk-arg-SECRET-0123456789abcdef", "--token=tok-SECRET-987654321",
        "GITHUB_TOKEN=ghp_SECRETSECRETSECRET0123"]
env = {{ GITHUB_TOKEN = "env-SECRET-value-42", PLAIN = "also-hidden" }}

[mcp_servers.remote]
url = "http://user:pw-SECRET@127.0.0.1:9/mcp?key=q-SECRET-7&api-version=2"
headers = {{ Authorization = "Bearer hdr-SECRET-1" }}
"""
SECRETS = ("SECRET", INLINE_KEY, API_KEY, "also-hidden", "pw-", "ghp_")


async def test_config_and_metadata_routes(home: Home) -> None:
    skills = home.path / "skills"
    skills.mkdir()
    (skills / "rust.md").write_text("Use cargo.")
    (skills / "debugging.md").write_text("Bisect.")
    async with running_server(home, extra=MCP_EXTRA) as server, httpx.AsyncClient() as http:

        async def get(path: str) -> object:
            response = await http.get(f"{server.url}{path}")
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/json"
            for secret in SECRETS:
                assert secret not in response.text, (path, secret)
            return response.json()

        config = await get("/api/config")
        sandbox = config.pop("sandbox")
        assert sandbox["policy"] == "local" and sandbox["backend"] in ("bwrap", "landlock", "none")
        assert config == {
            "default_provider": "fake",
            "max_iterations": 10,
            "providers": {
                "fake": {
                    "kind": "openai",
                    "api_base": home.llm.base_url,
                    "default_model": "fake-model",
                    "models": ["fake-model", "other-model"],
                    "env_var": "FAKE_LLM_KEY",
                    "timeout_secs": 5,
                    "max_tokens": None,
                }
            },
            "mcp_servers": {
                "files": {
                    "transport": "stdio",
                    "command": "/nonexistent/npx",
                    "args": [
                        "-y",
                        "@modelcontextprotocol/server-filesystem",
                        "/srv/data",
                        "--api-key",
                        "<redacted>",
                        "--token=<redacted>",
                        "GITHUB_TOKEN=<redacted>",
                    ],
                    "env": {"GITHUB_TOKEN": "<redacted>", "PLAIN": "<redacted>"},
                    "url": None,
                    "headers": [],
                    "enabled": True,
                },
                "remote": {
                    "transport": "http",
                    "command": None,
                    "args": [],
                    "env": {},
                    "url": "http://127.0.0.1:9/mcp?key=<redacted>&api-version=2",
                    "headers": ["Authorization"],
                    "enabled": True,
                },
            },
        }
        assert await get("/api/models") == {
            "default_provider": "fake",
            "providers": {
                "fake": {"default_model": "fake-model", "models": ["fake-model", "other-model"]}
            },
        }
        assert await get("/api/skills") == ["debugging", "rust"]
        tools = await get("/api/tools")
        assert isinstance(tools, list)
        assert [t["function"]["name"] for t in tools] == [
            "execute_command",
            "read_file",
            "write_file",
            "edit_file",
            "list_dir",
            "glob",
            "grep",
            "web_fetch",
            "update_plan",
        ]
        assert all(t["type"] == "function" for t in tools)
        assert all(set(t["function"]) == {"name", "description", "parameters"} for t in tools)
        servers: object = None
        with trio.fail_after(10):  # both fail: a missing command, a refused connection
            while not servers or any(row["state"] == "starting" for row in servers):
                servers = await get("/api/mcp-servers")
                await trio.sleep(0.02)
        assert isinstance(servers, list)
        files, remote = servers
        assert files.pop("error") == "command not found: /nonexistent/npx"
        assert "connect" in remote.pop("error").lower()
        common = {"state": "failed", "connected": False, "tool_count": 0, "tools": []}
        assert files == {
            "name": "files",
            "transport": "stdio",
            "command": "/nonexistent/npx",
            "restarts": files["restarts"],
            "log": str(home.path / "logs" / "mcp-files.log"),
            **common,
        }
        assert remote == {
            "name": "remote",
            "transport": "http",
            "url": "http://127.0.0.1:9/mcp?key=<redacted>&api-version=2",
            "restarts": remote["restarts"],
            **common,
        }
        assert await get("/healthz") == {"status": "ok"}

        missing = await http.get(f"{server.url}/api/nothing")
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
        wrong_method = await http.post(f"{server.url}/api/config")
        assert (wrong_method.status_code, wrong_method.json()["code"]) == (
            405,
            "method_not_allowed",
        )


async def test_sessions_list_and_detail(home: Home) -> None:
    home.llm.script.extend(
        [
            Reply.tool_call("execute_command", {"command": "echo hi"}, id="call_1"),
            Reply.text("It said hi."),
            Reply.text("Second."),
            Reply.text("Third."),
        ]
    )
    async with running_server(home) as server, httpx.AsyncClient() as http:
        ids = []
        async with connect(server.ws_url) as client:
            await client.initialize()
            for text in ("first prompt", "second prompt", "third prompt"):
                session_id = await client.new_session(home.workdir)
                _, response = await client.prompt(session_id, text)
                assert response["result"] == {"stopReason": "end_turn"}
                ids.append(session_id)

        listing = await http.get(f"{server.url}/api/sessions")
        metas = listing.json()
        assert [meta["id"] for meta in metas] == ids[::-1]
        assert "link" not in listing.headers
        meta = metas[-1]
        assert meta["title"] == "first prompt"
        assert meta["cwd"] == str(home.workdir)
        assert meta["provider"] == "fake" and meta["model"] == "fake-model"
        assert {"created_at", "updated_at", "skills"} <= set(meta)

        page = await http.get(f"{server.url}/api/sessions", params={"limit": 2})
        assert [m["id"] for m in page.json()] == ids[:0:-1]
        assert page.headers["link"] == '</api/sessions?limit=2&offset=2>; rel="next"'
        last = await http.get(f"{server.url}/api/sessions?limit=2&offset=2")
        assert [m["id"] for m in last.json()] == ids[:1]
        assert "link" not in last.headers
        for bad in ("limit=0", "limit=abc", "offset=-1", "limit=5000"):
            response = await http.get(f"{server.url}/api/sessions?{bad}")
            assert response.status_code == 400
            assert response.json()["code"] == "invalid_query"

        detail = await http.get(f"{server.url}/api/sessions/{ids[0]}")
        document = detail.json()
        assert set(document) == {"meta", "messages"}
        assert document["meta"]["id"] == ids[0]
        assert document["messages"] == [
            {"role": "user", "content": "first prompt"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "execute_command",
                            "arguments": json.dumps({"command": "echo hi"}),
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "content": "hi",
                "tool_call_id": "call_1",
                "tool_name": "execute_command",
            },
            {"role": "assistant", "content": "It said hi."},
        ]

        invalid = await http.get(f"{server.url}/api/sessions/not-a-uuid")
        assert invalid.status_code == 400
        assert invalid.json() == {"error": "invalid session id", "code": "invalid_session_id"}
        unknown = await http.get(f"{server.url}/api/sessions/6f1c3f0e-1d2b-4c5a-9e8f-0a1b2c3d4e5f")
        assert unknown.status_code == 404
        assert unknown.json() == {"error": "session not found", "code": "session_not_found"}


def test_argument_redaction() -> None:
    assert redact_args(["--port", "8080", "-v", "/home/me/project", "pkg@1.2.3"]) == [
        "--port",
        "8080",
        "-v",
        "/home/me/project",
        "pkg@1.2.3",
    ]
    assert redact_args(["--password", "hunter2", "--auth-token=abc", "x"]) == [
        "--password",
        "<redacted>",
        "--auth-token=<redacted>",
        "x",
    ]
    assert redact_args(["sk-ant-api03-abcdefghijklmnop", "AKIA0123456789ABCDEF0123456789XY"]) == [
        "<redacted>",
        "<redacted>",
    ]
    assert redact_args(["--url=https://u:p@h.example/x?token=t"]) == [
        "--url=https://h.example/x?token=<redacted>"
    ]


def test_url_credentials() -> None:
    assert strip_url_credentials("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert strip_url_credentials("http://u:p@[::1]:8080/v1?key=k#frag") == (
        "http://[::1]:8080/v1?key=<redacted>"
    )
    assert strip_url_credentials("not a url") == "not a url"


async def test_mcp_routes_show_a_connected_server_and_its_tools(home: Home) -> None:
    from tests.mcp.test_run_e2e import mcp_config_table

    async with (
        running_server(home, extra=mcp_config_table("live-one")) as server,
        httpx.AsyncClient() as http,
    ):
        rows: list[dict[str, object]] = []
        with trio.fail_after(20):
            while not rows or rows[0]["state"] != "connected":
                rows = (await http.get(f"{server.url}/api/mcp-servers")).json()
                await trio.sleep(0.05)
        assert rows[0]["tool_count"] == 9 and "live_one__echo" in rows[0]["tools"]  # type: ignore[operator]
        tools = (await http.get(f"{server.url}/api/tools")).json()
        names = [t["function"]["name"] for t in tools]
        assert names[:3] == ["execute_command", "read_file", "write_file"]
        assert "live_one__add" in names
        add = next(t for t in tools if t["function"]["name"] == "live_one__add")
        assert add["function"]["parameters"]["required"] == ["a", "b"]
