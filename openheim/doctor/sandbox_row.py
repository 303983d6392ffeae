"""The doctor's sandbox row: which backend would confine tools here, and whether ``serve``
with tenants would start."""

from __future__ import annotations

from collections.abc import Mapping

import trio

from openheim.config.model import Config
from openheim.config.sandbox_settings import SandboxMode
from openheim.doctor.rows import Row, Status
from openheim.foundation.errors import ConfigError, SandboxError
from openheim.sandbox.factory import sandbox_mode
from openheim.sandbox.select import BWRAP_FIX, choose

_ACCEPT_RISK = '[sandbox] mode = "none" with allow_unsandboxed_tenants = true'


async def check_sandbox(config: Config, env: Mapping[str, str], *, tenants: bool) -> list[Row]:
    """``tenants``: the config has server tokens, so ``serve`` needs a working backend."""
    try:
        mode = sandbox_mode(env, config.sandbox)
        choice = await trio.to_thread.run_sync(choose, mode)
    except (SandboxError, ConfigError) as exc:
        return [Row("sandbox", "", Status.FAIL, str(exc).partition("; fix: ")[0], _fix(exc))]
    settings = config.sandbox
    data = {
        "backend": choice.name,
        "mode": mode.value,
        "network": settings.network,
        "notes": list(choice.notes),
    }
    network = "network on" if settings.network else "network off"
    detail = f"{choice.describe()}; {network}"
    if choice.name != "none":
        return [Row("sandbox", "", Status.OK, detail, data=data)]
    if tenants and not settings.allow_unsandboxed_tenants:
        fix = f"{BWRAP_FIX}; or accept the risk with {_ACCEPT_RISK}"
        detail += "; `serve` with tenant tokens will refuse to start"
        return [Row("sandbox", "", Status.FAIL, detail, fix, data=data)]
    if mode is SandboxMode.NONE:
        return [Row("sandbox", "", Status.OK, f"{detail}; tools are not confined", data=data)]
    return [Row("sandbox", "", Status.WARN, detail, BWRAP_FIX, data=data)]


def _fix(exc: Exception) -> str:
    fix = str(exc).partition("; fix: ")[2]
    return fix or f'install bubblewrap or use [sandbox] mode = "auto"; {BWRAP_FIX}'
