"""What a tenant's client sees when it sends something wrong: its own words, never the server's
paths or internals (those go to the server log)."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import Home, home
from tests.server.client import connect, running_server

__all__ = ["home"]

ALICE = "alice-token-0123456789abcdef"
TOKENS = f'tokens = {{ "{ALICE}" = "alice" }}'


async def test_errors_name_only_what_the_tenant_sent(home: Home) -> None:
    (home.path / "skills").mkdir()
    (home.path / "skills" / "rust.md").write_text("Write Rust.")
    async with running_server(home, TOKENS) as server:
        root = home.workdir / "alice"
        async with connect(server.ws_url, token=ALICE) as alice:
            await alice.initialize()
            missing = str(uuid.uuid4())
            load = {"sessionId": missing, "cwd": str(root), "mcpServers": []}
            errors = {
                "load": (await alice.call("session/load", load))[1]["error"],
                "model": (
                    await alice.call(
                        "session/new",
                        {"cwd": str(root), "mcpServers": [], "_meta": {"model": "gpt-17"}},
                    )
                )[1]["error"],
                "skill": (
                    await alice.call(
                        "session/new",
                        {"cwd": str(root), "mcpServers": [], "_meta": {"skills": ["go"]}},
                    )
                )[1]["error"],
                "nul": (await alice.call("session/new", {"cwd": f"{root}/a\0b", "mcpServers": []}))[
                    1
                ]["error"],
                "surrogate": (
                    await alice.call("session/new", {"cwd": f"{root}/\ud800", "mcpServers": []})
                )[1]["error"],
                "outside": (await alice.call("session/new", {"cwd": "/etc", "mcpServers": []}))[1][
                    "error"
                ],
            }
    assert errors["load"] == {"code": -32002, "message": f"conversation {missing} not found"}
    assert errors["model"]["code"] == -32602
    assert errors["model"]["message"].startswith("model 'gpt-17' is not listed by any provider")
    assert errors["skill"] == {
        "code": -32602,
        "message": "unknown skill 'go'; installed skills: rust",
    }
    for name in ("nul", "surrogate"):
        assert errors[name]["code"] == -32602, errors[name]
        assert "not a valid path" in errors[name]["message"]
    assert errors["outside"] == {"code": -32602, "message": "cwd /etc is outside your workspace"}
    for error in errors.values():
        text = str(error)
        assert str(home.path) not in text and str(home.workdir) not in text.replace(str(root), "")
        assert "Error:" not in text  # no exception class names
