"""``[sandbox]``: which backend confines tools, and what a sandboxed command inherits."""

from __future__ import annotations

from openheim.config.sandbox_settings import Limits, SandboxSettings
from openheim.config.table import Table, settings_of


def read_sandbox(table: Table) -> SandboxSettings:
    """The file writes the resource limits flat (``max_memory_mb``), next to the other keys."""
    table.check_keys(settings_of(SandboxSettings) - {"limits"} | settings_of(Limits))
    return table.structure(SandboxSettings, limits=table.structure(Limits))
