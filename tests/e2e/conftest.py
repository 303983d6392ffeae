"""End-to-end harness: ``openheim`` as a real subprocess against the fake LLM on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from openheim.testing import FakeLLMServer, open_fake_llm

API_KEY = "sk-test-secret-key-0123456789"


@attrs.frozen
class Result:
    returncode: int
    stdout: str
    stderr: str


@attrs.define
class Home:
    """An OPENHEIM_HOME with a config pointing at the fake server, and a working folder."""

    path: Path
    workdir: Path
    llm: FakeLLMServer

    def write_config(self, extra_provider: str = "", top: str = "") -> None:
        (self.path / "config.toml").write_text(
            f"""{top}
default_provider = "fake"
max_iterations = 10

[providers.fake]
kind = "openai"
api_base = "{self.llm.base_url}"
default_model = "fake-model"
models = ["fake-model", "other-model"]
env_var = "FAKE_LLM_KEY"
max_retries = 2
retry_initial_delay_secs = 0.05
retry_max_delay_secs = 5
timeout_secs = 5
{extra_provider}
"""
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "OPENHEIM_HOME"}
        env.update(OPENHEIM_HOME=str(self.path), FAKE_LLM_KEY=API_KEY)
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "openheim", *args]

    async def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        with trio.fail_after(60):
            done = await trio.run_process(
                self.command(*args),
                cwd=self.workdir,
                env=env or self.env(),
                capture_stdout=True,
                capture_stderr=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        return Result(done.returncode, done.stdout.decode(), done.stderr.decode())

    def history_files(self) -> list[Path]:
        folder = self.path / "history"
        return sorted(folder.glob("*.json")) if folder.exists() else []

    def only_history(self) -> dict[str, Any]:
        files = self.history_files()
        assert len(files) == 1, files
        return json.loads(files[0].read_text())


def request_messages(llm: FakeLLMServer, index: int) -> Sequence[dict[str, Any]]:
    body = llm.requests[index].body
    assert isinstance(body, dict)
    return [m for m in body["messages"] if m["role"] != "system"]


@pytest.fixture
async def home(tmp_path: Path) -> AsyncIterator[Home]:
    async with open_fake_llm() as llm:
        home = Home(tmp_path / "home", tmp_path / "work", llm)
        home.path.mkdir()
        home.workdir.mkdir()
        home.write_config()
        yield home
