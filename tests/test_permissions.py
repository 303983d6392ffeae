from openheim.foundation.models import ToolCall
from openheim.permissions import Answer, Mode, PermissionPolicy, Policy, SessionPermissions
from openheim.tools.base import ToolRegistry
from openheim.tools.builtin import builtin_tools

CALL = ToolCall("1", "execute_command", '{"command": "ls"}')


def asker(*answers: Answer | None):  # type: ignore[no-untyped-def]
    queue = list(answers)
    asked: list[ToolCall] = []

    async def ask(call: ToolCall) -> Answer | None:
        asked.append(call)
        return queue.pop(0)

    return ask, asked


async def test_allow_and_deny_need_no_question() -> None:
    ask, asked = asker()
    allow = SessionPermissions(PermissionPolicy())
    assert await allow.check(CALL, ask) is None
    deny = SessionPermissions(PermissionPolicy(tools={"execute_command": Policy.DENY}))
    assert "does not allow execute_command" in (await deny.check(CALL, ask) or "")
    assert asked == []


async def test_ask_once_answers_are_not_remembered() -> None:
    permissions = SessionPermissions(PermissionPolicy(default=Policy.ASK))
    ask, asked = asker(Answer.ALLOW_ONCE, Answer.REJECT_ONCE)
    assert await permissions.check(CALL, ask) is None
    assert "rejected" in (await permissions.check(CALL, ask) or "")
    assert len(asked) == 2


async def test_always_answers_are_remembered_per_tool() -> None:
    permissions = SessionPermissions(PermissionPolicy(default=Policy.ASK))
    ask, asked = asker(Answer.ALLOW_ALWAYS, Answer.REJECT_ALWAYS)
    assert await permissions.check(CALL, ask) is None
    assert await permissions.check(CALL, ask) is None
    other = ToolCall("2", "write_file", "{}")
    assert "rejected" in (await permissions.check(other, ask) or "")
    assert "rejected" in (await permissions.check(other, ask) or "")
    assert [c.name for c in asked] == ["execute_command", "write_file"]


async def test_nobody_to_ask_is_a_denial_and_allow_all_overrides() -> None:
    permissions = SessionPermissions(PermissionPolicy(default=Policy.ASK))
    assert "nobody was available" in (await permissions.check(CALL, None) or "")
    ask, _ = asker(None)
    assert "nobody was available" in (await permissions.check(CALL, ask) or "")
    auto = SessionPermissions(permissions.policy, mode=Mode.AUTO)
    assert await auto.check(CALL, None) is None


async def test_ask_mode_asks_about_all_but_read_only_tools_and_keeps_denials() -> None:
    policy = PermissionPolicy(tools={"write_file": Policy.DENY})
    permissions = SessionPermissions(policy, mode=Mode.ASK, read_only={"read_file"}.__contains__)
    read = ToolCall("1", "read_file", "{}")
    assert not permissions.would_ask(read) and await permissions.check(read, None) is None
    assert permissions.would_ask(CALL)  # execute_command: allowed in code mode, asked here
    ask, asked = asker(Answer.ALLOW_ONCE)
    assert await permissions.check(CALL, ask) is None and [c.name for c in asked] == [CALL.name]
    assert "nobody was available" in (await permissions.check(CALL, None) or "")
    denied = ToolCall("2", "write_file", "{}")
    assert "does not allow" in (await permissions.check(denied, ask) or "")
    permissions.mode = Mode.CODE
    assert not permissions.would_ask(CALL) and await permissions.check(CALL, None) is None
    permissions.mode = Mode.AUTO
    assert await permissions.check(denied, None) is None


def test_ask_mode_lets_tools_that_only_read_search_or_plan_run_unasked() -> None:
    """Kinds decide, not names: an MCP tool (no kind) and web_fetch (fetch) are asked about;
    the plan tool (think) touches nothing and is not."""
    registry = ToolRegistry(builtin_tools())
    reads = {name for name in registry.names() if registry.only_reads(name)}
    assert reads == {"read_file", "list_dir", "glob", "grep", "update_plan"}
    assert not registry.only_reads("some_mcp__tool")


async def test_ask_mode_runs_the_plan_tool_without_a_question() -> None:
    """The plan touches nothing: ``ask`` mode lets it run even with nobody to answer."""
    registry = ToolRegistry(builtin_tools())
    permissions = SessionPermissions(
        PermissionPolicy(), mode=Mode.ASK, read_only=registry.only_reads
    )
    plan = ToolCall("p", "update_plan", '{"entries": []}')
    assert not permissions.would_ask(plan)
    assert await permissions.check(plan, None) is None
    assert permissions.would_ask(ToolCall("w", "write_file", "{}"))
