"""Where openheim keeps its files; ``OPENHEIM_HOME`` moves all of them (tests rely on it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

HOME_ENV_VAR = "OPENHEIM_HOME"


@attrs.frozen
class Paths:
    home: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if env is None else env
        override = env.get(HOME_ENV_VAR, "").strip()
        home = Path(override).expanduser() if override else Path.home() / ".openheim"
        return cls(home.absolute())

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def history_dir(self) -> Path:
        return self.home / "history"

    @property
    def skills_dir(self) -> Path:
        return self.home / "skills"

    @property
    def logs_dir(self) -> Path:
        """MCP servers' stderr, one file per server, so it never mixes into our output."""
        return self.home / "logs"
