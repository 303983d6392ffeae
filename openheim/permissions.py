"""Which tool calls may run: a per-tool policy, and answers remembered for a session.

``ask`` needs someone to answer. Each face supplies an ``Asker``; where nobody can answer
(headless without a terminal, a client that stays silent) the call is denied, never left
hanging.
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


#: Asks whoever is at the other end; ``None`` means nobody answered (timeout, no terminal).
Asker = Callable[[ToolCall], Awaitable[Answer | None]]


@attrs.frozen
class PermissionPolicy:
    default: Policy = Policy.ALLOW
    tools: Mapping[str, Policy] = attrs.field(factory=dict)

    def for_tool(self, name: str) -> Policy:
        return self.tools.get(name, self.default)


class SessionPermissions:
    """One session's view of the policy: remembers "always" answers per tool."""

    def __init__(self, policy: PermissionPolicy, *, allow_all: bool = False) -> None:
        self.policy = policy
        self.allow_all = allow_all
        self._remembered: dict[str, bool] = {}

    def would_ask(self, call: ToolCall) -> bool:
        """Whether ``check`` would ask about this call now (faces show it as pending)."""
        if self.allow_all or self.policy.for_tool(call.name) is not Policy.ASK:
            return False
        return call.name not in self._remembered

    async def check(self, call: ToolCall, ask: Asker | None) -> str | None:
        """``None`` when the call may run, else the reason the model is told."""
        if self.allow_all:
            return None
        policy = self.policy.for_tool(call.name)
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
