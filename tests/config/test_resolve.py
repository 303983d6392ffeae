from pathlib import Path

import pytest

from openheim.config.load import parse_config
from openheim.config.resolve import resolve_api_key, resolve_model
from openheim.foundation.errors import ConfigError

TEXT = """
default_provider = "zeta"
[providers.zeta]
api_base = "http://127.0.0.1:1/v1"
default_model = "shared"
models = ["shared", "z-only"]
[providers.alpha]
api_base = "http://127.0.0.1:2/v1"
default_model = "a-only"
models = ["a-only", "shared", "meta-llama/Llama-3-8B"]
[providers.openai]
api_base = "https://api.openai.com/v1"
default_model = "gpt-4.1"
models = ["gpt-4.1"]
env_var = "OPENAI_API_KEY"
[providers.inline]
kind = "openai"
api_base = "https://example.invalid/v1"
default_model = "m"
api_key = "inline-secret"
"""
CONFIG = parse_config(TEXT, Path("/c.toml"))


def test_no_model_uses_default_provider() -> None:
    choice = resolve_model(CONFIG, None)
    assert (choice.provider.name, choice.model) == ("zeta", "shared")


def test_listed_model_prefers_default_provider_then_alphabetical() -> None:
    assert resolve_model(CONFIG, "shared").provider.name == "zeta"
    assert resolve_model(CONFIG, "a-only").provider.name == "alpha"


def test_provider_slash_model() -> None:
    choice = resolve_model(CONFIG, "alpha/unlisted-model")
    assert (choice.provider.name, choice.model) == ("alpha", "unlisted-model")


def test_listed_model_with_slash_wins_over_provider_reading() -> None:
    choice = resolve_model(CONFIG, "meta-llama/Llama-3-8B")
    assert (choice.provider.name, choice.model) == ("alpha", "meta-llama/Llama-3-8B")


def test_unknown_model_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_model(CONFIG, "gpt-9")
    message = str(info.value)
    assert "model 'gpt-9' is not listed by any provider" in message
    assert "zeta/shared" in message and "PROVIDER/MODEL" in message
    assert "\n" not in message


def test_pinned_provider_must_exist() -> None:
    with pytest.raises(ConfigError, match="provider 'gone' is not configured"):
        resolve_model(CONFIG, "x", provider="gone")


def test_env_key_wins_over_inline() -> None:
    openai = CONFIG.providers["openai"]
    assert resolve_api_key("/c.toml", openai, {"OPENAI_API_KEY": " sk-1 "}) == "sk-1"


def test_missing_env_key_names_variable() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_api_key("/c.toml", CONFIG.providers["openai"], {"OPENAI_API_KEY": "  "})
    assert "OPENAI_API_KEY, which is not set" in str(info.value)
    assert "export OPENAI_API_KEY=" in str(info.value)


def test_inline_key_and_keyless_compatible() -> None:
    assert resolve_api_key("/c.toml", CONFIG.providers["inline"], {}) == "inline-secret"
    assert resolve_api_key("/c.toml", CONFIG.providers["alpha"], {}) is None


def test_secret_not_in_repr() -> None:
    assert "inline-secret" not in repr(CONFIG)
