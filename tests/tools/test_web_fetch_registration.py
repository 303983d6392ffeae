"""Where web_fetch is offered: with the network, and for tenants only when allowed; and the
setting itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from openheim.config.load import parse_config
from openheim.config.paths import Paths
from openheim.foundation.errors import ConfigError
from openheim.session import open_runtime

BASE = """
default_provider = "local"
[providers.local]
api_base = "http://127.0.0.1:9/v1"
default_model = "m1"
"""


@pytest.mark.parametrize(
    ("extra", "local", "tenant"),
    [
        ("", True, False),
        ("[server]\nallow_web_fetch = true\n", True, True),
        ("[sandbox]\nnetwork = false\n[server]\nallow_web_fetch = true\n", False, False),
    ],
)
async def test_web_fetch_is_offered_only_where_allowed(
    tmp_path: Path, extra: str, local: bool, tenant: bool
) -> None:
    paths = Paths(tmp_path)
    config = parse_config(BASE + extra, paths.config_file)
    async with open_runtime(config, paths, env={}) as runtime:
        assert ("web_fetch" in runtime.tools()) is local
        confined = runtime.with_store(runtime.store, confined_tenant=True)
        assert ("web_fetch" in confined.tools()) is tenant
        assert "edit_file" in confined.tools()


def test_the_setting_defaults_off_and_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert parse_config(BASE, path).server.allow_web_fetch is False
    with pytest.raises(ConfigError, match="allow_web_fetch"):
        parse_config(BASE + '[server]\nallow_web_fetch = "yes"\n', path)
