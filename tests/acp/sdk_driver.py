"""Drive ``openheim acp`` with the ACP Python SDK (asyncio, strict pydantic models).

Run as a process by the tests (the SDK cannot live inside pytest-trio): ``python
tests/acp/sdk_driver.py SCENARIO CWD EXTRA_DIR``. It prints one JSON object: what the agent
answered and every ``session/update`` it sent, as the SDK parsed them. The SDK validates each
response and notification against the ACP schema, so a malformed one fails the scenario.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from acp import PROTOCOL_VERSION, spawn_agent_process, text_block
from acp.exceptions import RequestError
from acp.schema import DeleteSessionRequest, DeleteSessionResponse
from acp.utils import request_model_from_dict


class Recorder:
    """The client side: records updates and permission requests, allows every one."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.asked: list[str] = []

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append(update.model_dump(mode="json", by_alias=True, exclude_none=True))

    async def request_permission(self, *args: Any, tool_call: Any, **kwargs: Any) -> Any:
        from acp.schema import AllowedOutcome, RequestPermissionResponse

        self.asked.append(tool_call.tool_call_id)
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id="allow_once")
        )

    def take(self) -> list[dict[str, Any]]:
        taken, self.updates = self.updates, []
        return taken


def spawn(recorder: Recorder, cwd: str) -> Any:
    """``openheim acp`` as the SDK's child, with our environment (the SDK passes only a few
    variables) and its stderr left to ours (the SDK would pipe it and never read it)."""
    return spawn_agent_process(
        recorder,
        sys.executable,
        "-m",
        "openheim",
        "acp",
        env=dict(os.environ),
        cwd=cwd,
        transport_kwargs={"stderr": None},
    )


def dump(value: Any) -> Any:
    return (
        None if value is None else value.model_dump(mode="json", by_alias=True, exclude_none=True)
    )


async def lifecycle(cwd: str, extra: str) -> dict[str, Any]:
    recorder = Recorder()
    out: dict[str, Any] = {}
    async with spawn(recorder, cwd) as (conn, _process):
        init = await conn.initialize(protocol_version=PROTOCOL_VERSION)
        out["initialize"] = dump(init)
        created = await conn.new_session(cwd=cwd, additional_directories=[extra], mcp_servers=[])
        out["new"] = dump(created)
        session_id = created.session_id
        answer = await conn.prompt(
            session_id=session_id, prompt=[text_block("  \nFirst line here  \nmore text")]
        )
        out["prompt"] = dump(answer)
        out["prompt_updates"] = recorder.take()
        options = await conn.set_config_option(config_id="mode", session_id=session_id, value="ask")
        out["set_mode_option"] = dump(options)
        out["set_mode_legacy"] = dump(
            await conn.set_session_mode(mode_id="auto", session_id=session_id)
        )
        out["set_mode_legacy_updates"] = recorder.take()
        resumed = await conn.resume_session(session_id=session_id, cwd=cwd)
        out["resume"] = dump(resumed)
        request = DeleteSessionRequest(session_id=session_id)
        deleted = await request_model_from_dict(
            conn._conn, "session/delete", request, DeleteSessionResponse
        )
        out["delete"] = dump(deleted)
        # Taken after the next answer: updates that follow resume's answer are in by then.
        out["resume_updates"] = recorder.take()
        try:
            await conn.load_session(session_id=session_id, cwd=cwd, mcp_servers=[])
        except RequestError as exc:
            out["load_deleted"] = {"code": exc.code, "message": str(exc)}
        fresh = await conn.new_session(cwd=cwd, mcp_servers=[])
        out["unprompted"] = fresh.session_id
    return out


async def reload(cwd: str, session_id: str) -> dict[str, Any]:
    """A new agent process loads a session the first one created and never prompted."""
    recorder = Recorder()
    async with spawn(recorder, cwd) as (conn, _process):
        await conn.initialize(protocol_version=PROTOCOL_VERSION)
        loaded = await conn.load_session(session_id=session_id, cwd=cwd, mcp_servers=[])
        await conn.list_sessions()  # updates that follow load's answer are in by then
        return {"load": dump(loaded), "updates": recorder.take()}


async def commands(cwd: str) -> dict[str, Any]:
    """Slash commands and the thinking option, each step's updates recorded apart."""
    recorder = Recorder()
    out: dict[str, Any] = {}
    async with spawn(recorder, cwd) as (conn, _process):
        await conn.initialize(protocol_version=PROTOCOL_VERSION)
        created = await conn.new_session(cwd=cwd, mcp_servers=[])
        session_id = created.session_id
        out["new"] = dump(created)
        await conn.list_sessions()  # updates that follow new's answer are in by then
        out["new_updates"] = recorder.take()
        for step, text in [
            ("compact", "/compact"),
            ("mode", "/mode ask"),
            ("bad_mode", "/mode wild"),
            ("thinking", "/thinking high"),
            ("model", "/model fake/other-model"),
            ("skills_before", "/skills"),
            ("skill", "/rust"),
            ("skills_after", "/skills"),
            ("skill_prompt", "/style Write it tersely"),
            ("path", "/etc/hosts is where?"),
        ]:
            answer = await conn.prompt(session_id=session_id, prompt=[text_block(text)])
            out[step] = {"answer": dump(answer), "updates": recorder.take()}
        option = await conn.set_config_option(
            config_id="thought_level", session_id=session_id, value="low"
        )
        out["set_thought_level"] = dump(option)
        try:
            await conn.set_config_option(
                config_id="thought_level", session_id=session_id, value="extreme"
            )
        except RequestError as exc:
            out["bad_thought_level"] = {"code": exc.code, "message": str(exc)}
    return out


async def plan(cwd: str) -> dict[str, Any]:
    """One prompt in ``ask`` mode whose model keeps a plan; what the client was sent and asked."""
    recorder = Recorder()
    async with spawn(recorder, cwd) as (conn, _process):
        await conn.initialize(protocol_version=PROTOCOL_VERSION)
        session_id = (await conn.new_session(cwd=cwd, mcp_servers=[])).session_id
        await conn.set_config_option(config_id="mode", session_id=session_id, value="ask")
        answer = await conn.prompt(session_id=session_id, prompt=[text_block("plan it")])
        return {
            "session": session_id,
            "prompt": dump(answer),
            "updates": recorder.take(),
            "asked": recorder.asked,
        }


def main() -> None:
    scenario, *args = sys.argv[1:]
    run = {"lifecycle": lifecycle, "reload": reload, "commands": commands, "plan": plan}[scenario]
    print(json.dumps(asyncio.run(run(*args))))


if __name__ == "__main__":
    main()
