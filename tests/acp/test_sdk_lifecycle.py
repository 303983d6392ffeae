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
    # Config-aware views hear of a legacy mode change too.
    (changed,) = out["set_mode_legacy_updates"]
    assert changed["sessionUpdate"] == "config_option_update"
    assert {o["id"]: o for o in changed["configOptions"]}["mode"]["currentValue"] == "auto"

    # Resume replays nothing; it only tells the client the session's commands again.
    assert kinds(out["resume_updates"]) == ["available_commands_update"]
    assert {o["id"]: o for o in out["resume"]["configOptions"]}["mode"]["currentValue"] == "auto"

    assert out["delete"] == {}
    assert out["load_deleted"]["code"] == -32002

    # A session never prompted is on disk at once: another agent process loads it.
    reloaded = await drive(home, "reload", str(home.workdir), out["unprompted"])
    assert kinds(reloaded["updates"]) == ["available_commands_update"]  # nothing to replay
    assert reloaded["load"]["_meta"]["models"]["currentModelId"] == "fake/fake-model"
    names = sorted(p.stem for p in home.history_files())
    assert names == [out["unprompted"]]  # the deleted one is gone from disk


def said(step: dict[str, Any]) -> str:
    """The text of a command's answer."""
    return "".join(
        update["content"]["text"]
        for update in step["updates"]
        if update["sessionUpdate"] == "agent_message_chunk"
    )


def option(options: list[dict[str, Any]], option_id: str) -> Any:
    return {o["id"]: o for o in options}[option_id]["currentValue"]


async def test_slash_commands_and_the_thinking_option_pass_the_sdk(home: Home) -> None:
    skills = home.path / "skills"
    skills.mkdir()
    (skills / "rust").write_text("not a skill: no .md")
    (skills / "rust.md").write_text("Prefer iterators over index loops.")
    (skills / "style.md").write_text("Answer in one sentence.")
    (skills / "model.md").write_text("A skill named like a built-in command.")
    home.llm.script.extend([Reply.text("Done tersely."), Reply.text("It is in /etc.")])
    out = await drive(home, "commands", str(home.workdir))

    # The thinking level is a config option from the start.
    assert option(out["new"]["configOptions"], "thought_level") == "off"
    thought = {o["id"]: o for o in out["new"]["configOptions"]}["thought_level"]
    assert thought["category"] == "thought_level"
    assert [o["value"] for o in thought["options"]] == ["off", "low", "medium", "high"]

    # The commands: the built-ins, then each installed skill (a built-in's name stays its own).
    (offered,) = out["new_updates"]
    assert offered["sessionUpdate"] == "available_commands_update"
    names = [command["name"] for command in offered["availableCommands"]]
    assert names == ["model", "mode", "thinking", "skills", "compact", "rust", "style"]
    rust = offered["availableCommands"][5]
    assert rust["input"] == {"hint": "optional prompt to send with it"}
    assert "rust skill" in rust["description"]

    # Every step that is a command answers end_turn without asking the model.
    for step in ("compact", "mode", "bad_mode", "thinking", "model", "skills_before", "skill"):
        assert out[step]["answer"] == {"stopReason": "end_turn"}

    assert said(out["compact"]) == "Nothing to compact yet."
    mode = out["mode"]["updates"]
    assert kinds(mode) == ["current_mode_update", "config_option_update", "agent_message_chunk"]
    assert mode[0]["currentModeId"] == "ask"
    assert option(mode[1]["configOptions"], "mode") == "ask"
    assert said(out["mode"]).startswith("Mode: Ask")

    assert kinds(out["bad_mode"]["updates"]) == ["agent_message_chunk"]
    assert "unknown mode 'wild'; choose one of: ask, code, auto" in said(out["bad_mode"])

    thinking = out["thinking"]["updates"]
    assert option(thinking[0]["configOptions"], "thought_level") == "high"
    assert said(out["thinking"]).startswith("Thinking: High")

    assert option(out["model"]["updates"][0]["configOptions"], "model") == "fake/other-model"
    assert said(out["model"]).startswith("Model: fake/other-model")

    assert "Installed skills: model, rust, style." in said(out["skills_before"])
    assert "None in this session yet." in said(out["skills_before"])
    assert said(out["skill"]) == "Using the rust skill in this session."
    assert "In this session: rust." in said(out["skills_after"])

    # A skill command with text sends the text, with the skill, to the model chosen above.
    assert out["skill_prompt"]["answer"] == {"stopReason": "end_turn"}
    assert "Done tersely." in said(out["skill_prompt"])
    first = home.llm.requests[0].body
    assert isinstance(first, dict)
    assert first["model"] == "other-model"
    system = first["messages"][0]["content"]
    assert "Prefer iterators" in system and "Answer in one sentence." in system
    assert first["messages"][-1] == {"role": "user", "content": "Write it tersely"}

    # Slash text that names no command is a prompt, sent as typed.
    second = home.llm.requests[1].body
    assert isinstance(second, dict)
    assert second["messages"][-1]["content"] == "/etc/hosts is where?"
    assert len(home.llm.requests) == 2

    assert option(out["set_thought_level"]["configOptions"], "thought_level") == "low"
    bad = out["bad_thought_level"]
    assert bad["code"] == -32602 and "unknown reasoning level 'extreme'" in bad["message"]
