"""Shared parts of the session tests: the fake LLM, and a runtime pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from openheim.config.load import parse_config
from openheim.config.paths import Paths
from openheim.session import Runtime, open_runtime
from openheim.testing import FakeLLMServer, open_fake_llm


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    async with open_fake_llm() as server:
        yield server


@asynccontextmanager
async def fake_runtime(
    llm: FakeLLMServer, tmp_path: Path, server_toml: str = ""
) -> AsyncIterator[Runtime]:
    """A runtime whose one provider is ``llm`` (no retries), with ``[server]`` keys given."""
    (tmp_path / "home").mkdir()
    paths = Paths(tmp_path / "home")
    text = f"""
default_provider = "fake"
[providers.fake]
api_base = "{llm.base_url}"
default_model = "m1"
max_retries = 0
[server]
{server_toml}
"""
    async with open_runtime(parse_config(text, paths.config_file), paths, env={}) as runtime:
        yield runtime
