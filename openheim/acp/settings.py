"""The knobs of the agent side of ACP, shared by stdio, ``/acp`` and ``/ws``."""

from __future__ import annotations

import os
from collections.abc import Mapping

import attrs

from openheim.config.model import ClientMcpPolicy
from openheim.foundation.errors import ConfigError

#: Seconds to wait for the user's answer to a permission request (then: denied).
PERMISSION_TIMEOUT_ENV = "OPENHEIM_ACP_PERMISSION_TIMEOUT"


@attrs.frozen
class AcpSettings:
    permission_timeout: float = 300.0
    #: Bound on waiting for the client's ``fs/*`` answers; a silent client fails the tool call.
    fs_timeout: float = 120.0
    max_requests_in_flight: int = 128
    #: On close, how long running prompts get to answer ``cancelled`` before being dropped.
    close_grace: float = 2.0
    #: Which ``mcpServers`` a client may pass (``serve`` with tokens: none by default).
    client_mcp_servers: ClientMcpPolicy = ClientMcpPolicy.ALL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AcpSettings:
        env = os.environ if env is None else env
        raw = env.get(PERMISSION_TIMEOUT_ENV, "").strip()
        if not raw:
            return cls()
        try:
            timeout = float(raw)
        except ValueError:
            raise ConfigError(
                f"{PERMISSION_TIMEOUT_ENV}={raw!r} is not a number of seconds"
            ) from None
        if timeout <= 0:
            raise ConfigError(f"{PERMISSION_TIMEOUT_ENV} must be greater than 0, got {raw}")
        return cls(permission_timeout=timeout)
