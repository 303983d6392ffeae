"""``[sandbox]`` as configured: which backend confines tools, and with what limits. The
sandbox layer (``openheim.sandbox``) turns these into each session's policy."""

from __future__ import annotations

import enum

import attrs


class SandboxMode(enum.StrEnum):
    """``[sandbox] mode`` and ``--sandbox``: which backend confines tools."""

    AUTO = "auto"
    BWRAP = "bwrap"
    LANDLOCK = "landlock"
    NONE = "none"


@attrs.frozen
class Limits:
    """Per-command resource limits; None leaves the OS default."""

    max_memory_mb: int | None = None
    max_processes: int | None = None


@attrs.frozen
class SandboxSettings:
    """``[sandbox]`` in the config: how every session's policy is built."""

    mode: SandboxMode = SandboxMode.AUTO
    network: bool = True
    env_exclude: tuple[str, ...] = ("*_KEY", "*_TOKEN", "*_SECRET", "*PASSWORD*")
    env_passthrough: tuple[str, ...] = ()
    limits: Limits = attrs.field(factory=Limits)
    #: Commands of one tenant running at once (``serve``); the rest wait for a slot.
    max_commands_per_tenant: int = 8
    #: ``serve`` with tokens and no working backend starts only with this set.
    allow_unsandboxed_tenants: bool = False
