"""The smallest value each number in the config file may take.

The defaults live on the attrs classes; these bounds are what a file may set instead, checked
only for the keys the file gives.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from openheim.config.model import (
    Config,
    McpServerConfig,
    ModelPrice,
    ProviderConfig,
    ServerConfig,
    StoreConfig,
    ToolsConfig,
)
from openheim.config.sandbox_settings import Limits, SandboxSettings


@attrs.frozen
class Bound:
    minimum: int
    inclusive: bool = True
    fix: str = "change it"

    def problem(self, value: float) -> str | None:
        """None when ``value`` is allowed, else what is wrong with it."""
        if value > self.minimum or (self.inclusive and value == self.minimum):
            return None
        word = "at least" if self.inclusive else "greater than"
        return f"must be {word} {self.minimum}, got {value}"


def at_least(minimum: int) -> Bound:
    """An integer count or size."""
    return Bound(minimum, fix="raise it")


POSITIVE = Bound(0, inclusive=False)
NOT_NEGATIVE = Bound(0)

BOUNDS: Mapping[type, Mapping[str, Bound]] = {
    Config: {"max_iterations": at_least(1)},
    ProviderConfig: {
        "timeout_secs": POSITIVE,
        "connect_timeout_secs": POSITIVE,
        "max_tokens": at_least(1),
        "max_retries": at_least(0),
        "retry_initial_delay_secs": POSITIVE,
        "retry_max_delay_secs": POSITIVE,
        "max_in_flight": at_least(1),
        "requests_per_minute": POSITIVE,
        "max_reply_bytes": at_least(1024),
        "max_reply_secs": POSITIVE,
        "context_window": at_least(1024),
    },
    ModelPrice: {name: NOT_NEGATIVE for name in ("input", "output", "cache_read", "cache_write")},
    McpServerConfig: {"startup_timeout_secs": POSITIVE, "tool_timeout_secs": POSITIVE},
    ToolsConfig: {
        "command_timeout_secs": POSITIVE,
        "output_limit_bytes": at_least(1024),
        "read_limit_bytes": at_least(1024),
    },
    ServerConfig: {
        "disconnect_grace_secs": NOT_NEGATIVE,
        "slow_client_timeout_secs": POSITIVE,
        "max_sessions_per_tenant": at_least(1),
        "max_turns_per_tenant": at_least(1),
        "max_frame_bytes": at_least(1024),
        "max_workspace_bytes": at_least(0),
        "session_lease_secs": POSITIVE,
        "session_idle_secs": POSITIVE,
        "max_rss_mb": at_least(1),
    },
    StoreConfig: {"pool_size": at_least(1)},
    SandboxSettings: {"max_commands_per_tenant": at_least(1)},
    Limits: {"max_memory_mb": at_least(16), "max_processes": at_least(1)},
}
