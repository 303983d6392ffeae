"""``[sandbox]``: which backend confines tools, and what a sandboxed command inherits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openheim.sandbox.policy import Limits, SandboxMode, SandboxSettings

if TYPE_CHECKING:
    from openheim.config.load import _Table

_MODES = ", ".join(f'"{mode.value}"' for mode in SandboxMode)


def read_sandbox(table: _Table | None) -> SandboxSettings:
    if table is None:
        return SandboxSettings()
    defaults = SandboxSettings()
    mode_text = table.get("mode", str, defaults.mode.value)
    try:
        mode = SandboxMode(mode_text)
    except ValueError:
        raise table.fail("mode", f"is {mode_text!r}", f"use one of {_MODES}") from None
    settings = SandboxSettings(
        mode=mode,
        network=table.get("network", bool, defaults.network),
        env_exclude=table.strings("env_exclude", defaults.env_exclude),
        env_passthrough=table.strings("env_passthrough"),
        limits=Limits(
            max_memory_mb=table.integer("max_memory_mb", None, minimum=16),
            max_processes=table.integer("max_processes", None, minimum=1),
        ),
        max_commands_per_tenant=table.integer(  # type: ignore[arg-type]
            "max_commands_per_tenant", defaults.max_commands_per_tenant, minimum=1
        ),
        allow_unsandboxed_tenants=table.get("allow_unsandboxed_tenants", bool, False),
    )
    table.reject_unknown()
    return settings
