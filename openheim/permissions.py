"""Which tool calls may run: a per-tool policy, a session mode, and answers remembered.

``ask`` needs someone to answer. Each face supplies an ``Asker``; where nobody can answer
(headless without a terminal, a client that stays silent) the call is denied, never left
hanging. The session's ``Mode`` sits on top of the configured policy: ``ask`` lets read-only
tools run as configured and asks about everything else, ``code`` is the policy itself, ``auto``
allows every tool (the sandbox still confines them).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping

import attrs

from openheim.foundation.models import ToolCall


class Policy(enum.StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


class Answer(enum.StrEnum):
    """The four ACP permission options."""

    ALLOW_ONCE = "allow_once"
    ALLOW_ALWAYS = "allow_always"
    REJECT_ONCE = "reject_once"
    REJECT_ALWAYS = "reject_always"

    @property
    def allows(self) -> bool:
        return self in (Answer.ALLOW_ONCE, Answer.ALLOW_ALWAYS)

    @property
    def remembered(self) -> bool:
        return self in (Answer.ALLOW_ALWAYS, Answer.REJECT_ALWAYS)


class Mode(enum.StrEnum):
    """A session's permission mode (ACP config option ``mode``)."""

    ASK = "ask"
    CODE = "code"
    AUTO = "auto"


#: Asks whoever is at the other end; ``None`` means nobody answered (timeout, no terminal).
Asker = Callable[[ToolCall], Awaitable[Answer | None]]


@attrs.frozen
class PermissionPolicy:
    default: Policy = Policy.ALLOW
    tools: Mapping[str, Policy] = attrs.field(factory=dict)

    def for_tool(self, name: str) -> Policy:
        return self.tools.get(name, self.default)


class SessionPermissions:
    """One session's view of the policy under its mode: remembers "always" answers per tool.

    ``read_only`` says which tools ``ask`` mode lets run unasked (the session passes its
    registry's ``only_reads``, which goes by each tool's declared kind); by default none."""

    def __init__(
        self,
        policy: PermissionPolicy,
        *,
        mode: Mode = Mode.CODE,
        read_only: Callable[[str], bool] = lambda name: False,
    ) -> None:
        self.policy = policy
        self.mode = mode
        self._read_only = read_only
        self._remembered: dict[str, bool] = {}

    def policy_for(self, name: str) -> Policy:
        """The policy that applies to tool ``name`` in the current mode."""
        if self.mode is Mode.AUTO:
            return Policy.ALLOW
        configured = self.policy.for_tool(name)
        if self.mode is Mode.ASK and configured is Policy.ALLOW and not self._read_only(name):
            return Policy.ASK
        return configured

    def would_ask(self, call: ToolCall) -> bool:
        """Whether ``check`` would ask about this call now (faces show it as pending)."""
        if self.policy_for(call.name) is not Policy.ASK:
            return False
        return call.name not in self._remembered

    async def check(self, call: ToolCall, ask: Asker | None) -> str | None:
        """``None`` when the call may run, else the reason the model is told."""
        policy = self.policy_for(call.name)
        if policy is Policy.ALLOW:
            return None
        if policy is Policy.DENY:
            return f"permission denied: the configuration does not allow {call.name}"
        if call.name in self._remembered:
            allowed = self._remembered[call.name]
            return None if allowed else f"permission denied: the user rejected {call.name}"
        answer = await ask(call) if ask is not None else None
        if answer is None:
            return f"permission denied: nobody was available to approve {call.name}"
        if answer.remembered:
            self._remembered[call.name] = answer.allows
        return None if answer.allows else f"permission denied: the user rejected {call.name}"
