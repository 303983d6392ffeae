"""The session lifecycle and options of issue 16 through the ACP Python SDK's strict models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from openheim.testing import Reply
from tests.e2e.conftest import Home, home

__all__ = ["home"]

DRIVER = Path(__file__).with_name("sdk_driver.py")


async def drive(home: Home, *args: str) -> dict[str, Any]:
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, str(DRIVER), *args],
            cwd=home.workdir,
            env=home.env(),
            capture_stdout=True,
            capture_stderr=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def kinds(updates: list[dict[str, Any]]) -> list[str]:
    return [update["sessionUpdate"] for update in updates]


async def test_resume_delete_modes_title_and_usage_pass_the_sdk(home: Home) -> None:
    home.write_config()
    extra = home.workdir / "extra"
    extra.mkdir()
    home.llm.script.append(Reply.text("Hello there."))
    out = await drive(home, "lifecycle", str(home.workdir), str(extra))

    capabilities = out["initialize"]["agentCapabilities"]["sessionCapabilities"]
    assert {"resume", "delete", "additionalDirectories", "list", "close"} <= set(capabilities)

    created = out["new"]
    options = {option["id"]: option for option in created["configOptions"]}
    assert options["mode"]["currentValue"] == "code"
    assert [o["value"] for o in options["mode"]["options"]] == ["ask", "code", "auto"]
    assert created["modes"]["currentModeId"] == "code"
    assert created["_meta"]["models"]["currentModelId"] == "fake/fake-model"
    assert "models" not in created  # custom data lives in _meta

    assert out["prompt"]["stopReason"] == "end_turn"
    updates = out["prompt_updates"]
    assert kinds(updates)[-2:] == ["session_info_update", "usage_update"]
    assert updates[-2]["title"] == "First line here"
    usage = updates[-1]
    assert usage["used"] > 0 and usage["size"] == 8192  # "fake-model": the fallback window

    mode = {o["id"]: o for o in out["set_mode_option"]["configOptions"]}["mode"]
    assert mode["currentValue"] == "ask"
    assert out["set_mode_legacy"] == {}

    assert out["resume_updates"] == []  # resume replays nothing
    assert {o["id"]: o for o in out["resume"]["configOptions"]}["mode"]["currentValue"] == "auto"

    assert out["delete"] == {}
    assert out["load_deleted"]["code"] == -32002

    # A session never prompted is on disk at once: another agent process loads it.
    reloaded = await drive(home, "reload", str(home.workdir), out["unprompted"])
    assert reloaded["updates"] == []
    assert reloaded["load"]["_meta"]["models"]["currentModelId"] == "fake/fake-model"
    names = sorted(p.stem for p in home.history_files())
    assert names == [out["unprompted"]]  # the deleted one is gone from disk
