"""``openheim run`` with an MCP server from the config: a real process, server and fake LLM."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import trio

from openheim.testing import Reply
from tests.e2e.conftest import Home, request_messages
from tests.mcp.conftest import SERVER_APP, HttpServer
from tests.waiting import wait_until


def mcp_config_table(name: str = "test") -> str:
    return f"""
[mcp_servers.{name}]
command = {json.dumps(sys.executable)}
args = [{json.dumps(str(SERVER_APP))}]
startup_timeout_secs = 20
"""


async def test_run_calls_an_mcp_tool_and_leaves_no_server_behind(home: Home) -> None:
    (home.path / "config.toml").write_text(
        (home.path / "config.toml").read_text() + mcp_config_table("my-tools")
    )
    home.llm.script.extend(
        [
            Reply.tool_calls(
                [
                    ("call_echo", "my_tools__echo", {"text": "from MCP"}),
                    ("call_pid", "my_tools__pid", {}),
                    ("call_child", "my_tools__child", {}),
                ]
            ),
            Reply.text("The server said echo: from MCP."),
        ]
    )
    result = await home.run("run", "Echo through MCP")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The server said echo: from MCP.\n"

    tool_messages = {
        m["tool_call_id"]: m["content"]
        for m in request_messages(home.llm, 1)
        if m["role"] == "tool"
    }
    assert tool_messages["call_echo"] == "echo: from MCP"
    server_pid = int(tool_messages["call_pid"])
    child_pid = int(tool_messages["call_child"])
    # The run has exited: its MCP server and the server's own child must be gone too (killed
    # with the server's process group, not merely orphaned).
    for pid in (server_pid, child_pid):
        await wait_until(lambda pid=pid: not alive(pid), what=f"process {pid} to end")
        assert not alive(pid), f"MCP server process {pid} outlived the run"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_run_without_mcp_servers_never_imports_mcp(home: Home) -> None:
    probe = (
        "import sys, trio\n"
        "import openheim.headless as h\n"
        "from openheim.headless import RunOptions, Terminal, run_headless\n"
        "import io, os\n"
        "out = io.StringIO()\n"
        "code = trio.run(lambda: run_headless(RunOptions('hi'), env=dict(os.environ),"
        " terminal=Terminal(out=out, err=io.StringIO(), inp=None)))\n"
        "assert code == 0, code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'mcp')\n"
        "print(out.getvalue().strip(), loaded)\n"
    )
    home.llm.script.append(Reply.text("plain"))
    done = await trio.run_process(
        [sys.executable, "-c", probe],
        cwd=home.workdir,
        env=home.env(),
        capture_stdout=True,
        capture_stderr=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "plain []"


async def test_run_calls_a_streamable_http_server(home: Home, http_server: HttpServer) -> None:
    table = f'\n[mcp_servers.web]\nurl = "{http_server.url}"\nstartup_timeout_secs = 10\n'
    (home.path / "config.toml").write_text((home.path / "config.toml").read_text() + table)
    home.llm.script.extend(
        [
            Reply.tool_call("web__add", {"a": 40, "b": 2}, id="call_add"),
            Reply.text("It is 42."),
        ]
    )
    result = await home.run("run", "Add over HTTP")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "It is 42.\n"
    tool_messages = [m for m in request_messages(home.llm, 1) if m["role"] == "tool"]
    assert tool_messages == [{"role": "tool", "tool_call_id": "call_add", "content": "42"}]


async def test_a_server_that_never_starts_delays_the_first_prompt_by_its_timeout_only(
    home: Home,
) -> None:
    stuck = '\n[mcp_servers.stuck]\ncommand = "sleep"\nargs = ["300"]\nstartup_timeout_secs = 2\n'
    (home.path / "config.toml").write_text((home.path / "config.toml").read_text() + stuck)
    home.llm.script.append(Reply.text("answered"))
    started = trio.current_time()
    result = await home.run("run", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "answered\n"
    # The prompt waited for the server up to its 2 s startup timeout, not its 300 s sleep.
    assert trio.current_time() - started < 15
    assert "MCP server stuck failed: did not start within 2 s" in result.stderr
    assert not any(
        tool["function"]["name"].startswith("stuck__")
        for tool in home.llm.requests[0].body["tools"]
    )
