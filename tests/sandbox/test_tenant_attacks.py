"""A hostile tenant's model against a real ``openheim serve`` with two tenants, per backend.

Alice's model asks for every escape we know of, all at once; nothing of Bob's workspace or
history, nothing of the operator's secrets and nothing of the server reaches the model, and no
process outlives the turn. Then the same sandbox still lets ordinary work happen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from openheim.testing import Reply
from tests.e2e.conftest import API_KEY, Home, home, request_messages
from tests.processes import live_with_marker, unique_seconds
from tests.server.client import connect, server_process, write_server_config

__all__ = ["home"]

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef"
METRICS = "metrics-token-0123456789abcdef"
BOB_SECRET = "bob-secret-7f3a9c"
TOKENS = f'tokens = {{ "{ALICE}" = "alice", "{BOB}" = "bob" }}\nmetrics_token = "{METRICS}"'
SECRETS = (API_KEY, ALICE, BOB, METRICS, BOB_SECRET)


def configure(home: Home, backend: str, sandbox: str = "") -> None:
    write_server_config(home, TOKENS, extra=f'[sandbox]\nmode = "{backend}"\n{sandbox}')


async def run_as_alice(
    home: Home, calls: list[tuple[str, dict[str, Any]]], *, parallel: bool = False
) -> list[str]:
    """Alice's model makes ``calls`` in one turn, one after the other or all at once; the
    tool results, in order."""
    numbered = [(f"call_{i}", name, args) for i, (name, args) in enumerate(calls)]
    if parallel:
        home.llm.script.append(Reply.tool_calls(numbered))
    else:
        home.llm.script.extend(Reply.tool_call(name, args, id=id) for id, name, args in numbered)
    home.llm.script.append(Reply.text("done"))
    async with server_process(home) as server, connect(server.ws_url, token=ALICE) as alice:
        await alice.initialize()
        session_id = await alice.new_session(home.workdir / "alice")
        with trio.fail_after(60):
            _, response = await alice.prompt(session_id, "do it")
        assert response["result"] == {"stopReason": "end_turn"}, response
    last = len(home.llm.requests) - 1
    results = [m for m in request_messages(home.llm, last) if m["role"] == "tool"]
    assert len(results) == len(calls)
    return [m["content"] for m in results]


def plant_bob(home: Home) -> Path:
    """Bob's workspace and history, as the server keeps them."""
    bob = home.workdir / "bob"
    bob.mkdir(parents=True)
    (bob / "secret.txt").write_text(BOB_SECRET)
    history = home.path / "tenants" / "bob" / "history"
    history.mkdir(parents=True)
    (history / "0b0b.json").write_text(json.dumps({"secret": BOB_SECRET}))
    (home.workdir / "alice").mkdir()
    return bob


async def test_every_escape_is_refused(home: Home, backend: str) -> None:
    configure(home, backend)
    bob = plant_bob(home)
    config = home.path / "config.toml"
    daemons = [unique_seconds(1000) for _ in range(3)]
    attacks: list[tuple[str, dict[str, Any]]] = [
        ("read_file", {"path": "../bob/secret.txt"}),
        ("read_file", {"path": str(bob / "secret.txt")}),
        ("read_file", {"path": str(config)}),
        ("write_file", {"path": "../bob/planted.txt", "content": "x"}),
        ("write_file", {"path": str(bob / "planted2.txt"), "content": "x"}),
        ("execute_command", {"command": "env"}),
        ("execute_command", {"command": f"cat ../bob/secret.txt {bob}/secret.txt"}),
        ("execute_command", {"command": f"cat {config}; ls {home.path}"}),
        ("execute_command", {"command": f"cat {home.path}/tenants/bob/history/*.json"}),
        ("execute_command", {"command": f"echo x > {bob}/planted3.txt; ls {bob}"}),
        ("execute_command", {"command": "cat /proc/*/environ | tr '\\0' '\\n'"}),
        ("execute_command", {"command": "cat /proc/*/cmdline | tr '\\0' ' '; ps aux"}),
        ("execute_command", {"command": f"setsid -f sleep {daemons[0]}; echo started"}),
        (
            "execute_command",
            {"command": f"(sleep {daemons[1]} &) ; nohup sleep {daemons[2]} & echo ok"},
        ),
        ("execute_command", {"command": "cat /etc/shadow; ls /root /home /srv"}),
    ]
    results = await run_as_alice(home, attacks, parallel=True)

    for (name, args), text in zip(attacks, results, strict=True):
        for secret in SECRETS:
            assert secret not in text, (name, args, text)
        assert "FAKE_LLM_KEY" not in text and "OPENHEIM_HOME" not in text, (args, text)
        assert str(home.path) not in text or str(home.path) in json.dumps(args), (args, text)
    assert "root:" not in results[-1]
    assert "openheim serve" not in results[11] and "-m openheim" not in results[11]
    assert sorted(p.name for p in bob.iterdir()) == ["secret.txt"]
    assert (bob / "secret.txt").read_text() == BOB_SECRET
    for marker in daemons:
        assert live_with_marker(marker) == [], f"{marker} outlived the command"


async def test_ordinary_work_still_works_inside(home: Home, backend: str) -> None:
    configure(home, backend)
    plant_bob(home)
    work: list[tuple[str, dict[str, Any]]] = [
        ("write_file", {"path": "src/main.c", "content": "int main(void) { return 7; }\n"}),
        ("read_file", {"path": "src/main.c"}),
        ("execute_command", {"command": "seq 1 100 | sort -rn | head -3"}),
        ("execute_command", {"command": "(sleep 0.2; echo from-bg) & echo fg; wait"}),
        ("execute_command", {"command": "t=$(mktemp) && echo temp-ok > $t && cat $t"}),
        ("execute_command", {"command": "mkdir -p a/b && echo nested > a/b/f && cat a/b/f"}),
        ("execute_command", {"command": "echo $HOME; pwd"}),
        ("execute_command", {"command": "git init -q repo && cd repo && git status --short"}),
    ]
    results = await run_as_alice(home, work)
    assert results[0].startswith("Wrote ")
    assert results[1] == "int main(void) { return 7; }\n"
    assert results[2] == "100\n99\n98"
    assert results[3] == "fg\nfrom-bg"
    assert results[4] == "temp-ok"
    assert results[5] == "nested"
    assert results[6].splitlines()[1] == str(home.workdir / "alice")
    assert not results[7].startswith("[") and "error" not in results[7].lower(), results[7]
    assert (home.workdir / "alice" / "a" / "b" / "f").read_text() == "nested\n"


async def test_a_build_runs_in_the_workspace(home: Home, backend: str) -> None:
    configure(home, backend)
    plant_bob(home)
    source = '#include <stdio.h>\nint main(void) { puts("built"); return 0; }\n'
    results = await run_as_alice(
        home,
        [
            ("write_file", {"path": "hello.c", "content": source}),
            ("execute_command", {"command": "cc -o hello hello.c && ./hello"}),
        ],
    )
    assert results[1] == "built", results[1]


async def test_serve_with_tenants_refuses_to_start_unsandboxed(home: Home) -> None:
    write_server_config(home, TOKENS, extra='[sandbox]\nmode = "none"\n')
    result = await home.run("serve", "--port", "0")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no sandbox confines their tools" in lines[0]
    assert "allow_unsandboxed_tenants = true" in lines[0]
    for secret in SECRETS:
        assert secret not in result.stderr

    # A named backend that does not work here is refused too, never silently downgraded.
    write_server_config(home, TOKENS)
    result = await home.run(
        "serve", "--port", "0", "--sandbox", "bwrap", env=home.env(PATH="/nowhere")
    )
    assert result.returncode != 0
    assert "bwrap is not installed" in result.stderr
