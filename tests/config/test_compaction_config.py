"""``compact_at`` for a provider and for serve's tenants, and the windows doctor shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from openheim.config.context_windows import window_source
from openheim.config.load import parse_config
from openheim.foundation.errors import ConfigError

PATH = Path("/home/u/.openheim/config.toml")
BASE = """
default_provider = "p"
[providers.p]
api_base = "http://127.0.0.1:1/v1"
default_model = "gpt-4o"
{provider}
[providers.p.context_windows]
"small" = 4096
[server]
{server}
"""


def test_defaults_and_settings() -> None:
    config = parse_config(BASE.format(provider="", server=""), PATH)
    provider = config.providers["p"]
    assert provider.compact_at == 0.8 and config.server.compact_at is None
    assert window_source(provider, "gpt-4o") == "family default"
    assert window_source(provider, "small") == "context_windows"
    assert window_source(provider, "mystery") == "fallback"
    config = parse_config(BASE.format(provider="compact_at = 0.5", server="compact_at = 1"), PATH)
    assert config.providers["p"].compact_at == 0.5 and config.server.compact_at == 1.0


@pytest.mark.parametrize("where", ["provider", "server"])
@pytest.mark.parametrize("value", ["0", "1.5", "0.05"])
def test_compact_at_must_be_a_share(where: str, value: str) -> None:
    text = BASE.format(**{"provider": "", "server": "", where: f"compact_at = {value}"})
    with pytest.raises(ConfigError, match="`.*compact_at` must be between 0.1 and 1"):
        parse_config(text, PATH)
