"""A tenant's coding tools (edit_file, list_dir, glob, grep) stay in its workspace, through a
real `openheim serve` with tokens; and web_fetch is off for tenants unless allowed."""

from __future__ import annotations

import json
from typing import Any

from openheim.testing import Reply
from tests.e2e.conftest import Home, home
from tests.sandbox.test_tenant_attacks import (
    ALICE,
    BOB_SECRET,
    SECRETS,
    TOKENS,
    configure,
    plant_bob,
    run_as_alice,
)
from tests.server.client import connect, server_process, write_server_config

__all__ = ["home"]


async def test_the_coding_tools_cannot_leave_the_workspace(home: Home, backend: str) -> None:
    configure(home, backend)
    bob = plant_bob(home)
    config = home.path / "config.toml"
    (home.workdir / "alice" / "mine.txt").write_text("alice's own words\n")
    attacks: list[tuple[str, dict[str, Any]]] = [
        ("edit_file", {"path": "../bob/secret.txt", "old_string": "bob", "new_string": "x"}),
        ("edit_file", {"path": str(bob / "secret.txt"), "old_string": "bob", "new_string": "x"}),
        ("edit_file", {"path": str(config), "old_string": "tokens", "new_string": "x"}),
        ("list_dir", {"path": "../bob"}),
        ("list_dir", {"path": str(home.path), "depth": 3}),
        ("glob", {"pattern": "**/*", "path": ".."}),
        ("grep", {"pattern": "secret", "path": "../bob"}),
        ("grep", {"pattern": "token", "path": str(config)}),
        ("grep", {"pattern": "bob", "path": "/"}),
    ]
    results = await run_as_alice(
        home, [*attacks, ("grep", {"pattern": "own words"})], parallel=True
    )
    for (name, args), text in zip(attacks, results, strict=False):
        for secret in SECRETS:
            assert secret not in text, (name, args, text)
        assert "Permission denied" in text, (name, args, text)
        assert str(home.path) not in text or str(home.path) in json.dumps(args), (args, text)
    assert results[-1] == "mine.txt:1: alice's own words\n[1 match in 1 file]"
    assert (bob / "secret.txt").read_text() == BOB_SECRET
    assert sorted(p.name for p in bob.iterdir()) == ["secret.txt"]
    offered = [t["function"]["name"] for t in home.llm.requests[0].body["tools"]]
    assert "edit_file" in offered and "web_fetch" not in offered


async def test_allow_web_fetch_offers_it_to_tenants(home: Home, backend: str) -> None:
    write_server_config(
        home,
        f"{TOKENS}\nallow_web_fetch = true",
        extra=f'[sandbox]\nmode = "{backend}"\n',
    )
    home.llm.script.append(Reply.text("hi"))
    (home.workdir / "alice").mkdir()
    async with server_process(home) as server, connect(server.ws_url, token=ALICE) as alice:
        await alice.initialize()
        session_id = await alice.new_session(home.workdir / "alice")
        _, response = await alice.prompt(session_id, "hello")
    assert response["result"] == {"stopReason": "end_turn"}
    offered = [t["function"]["name"] for t in home.llm.requests[0].body["tools"]]
    assert "web_fetch" in offered
