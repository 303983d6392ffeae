"""Configs for the test MCP server (``server_app.py``), run over stdio."""

from __future__ import annotations

import sys
from pathlib import Path

from openheim.config.model import McpServerConfig
from tests.e2e.conftest import home  # noqa: F401 (the e2e fixture, for test_run_e2e)

SERVER_APP = Path(__file__).with_name("server_app.py")


def server_config(name: str = "test", **options: object) -> McpServerConfig:
    defaults: dict[str, object] = {"startup_timeout_secs": 20.0, "tool_timeout_secs": 10.0}
    return McpServerConfig(
        name=name,
        command=sys.executable,
        args=(str(SERVER_APP),),
        **(defaults | options),  # type: ignore[arg-type]
    )
