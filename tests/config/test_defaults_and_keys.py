"""Defaults come from the attrs classes alone; unknown keys are named as typos at every level."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from openheim.config.bounds import BOUNDS
from openheim.config.load import load_config, parse_config
from openheim.config.model import (
    Config,
    McpServerConfig,
    ModelPrice,
    ProviderConfig,
    ProviderKind,
    ServerConfig,
    StoreConfig,
    ToolsConfig,
)
from openheim.config.paths import Paths
from openheim.config.sandbox_settings import Limits, SandboxSettings
from openheim.config.table import settings_of
from openheim.foundation.errors import ConfigError

PATH = Path("/home/u/.openheim/config.toml")
MINIMAL = """
default_provider = "local"
[providers.local]
api_base = "http://127.0.0.1:9/v1"
default_model = "m1"
"""


def model_default(instance: attrs.AttrsInstance, name: str) -> object:
    """What the attrs class itself gives ``name`` when it is left out (factories included)."""
    default = attrs.fields_dict(type(instance))[name].default
    factory = getattr(default, "factory", None)
    if factory is None:
        return default
    return factory(instance) if default.takes_self else factory()


def assert_model_defaults(instance: attrs.AttrsInstance, *, except_for: set[str]) -> None:
    for field in attrs.fields(type(instance)):
        if field.name in except_for or field.default is attrs.NOTHING:
            continue
        actual = getattr(instance, field.name)
        assert actual == model_default(instance, field.name), field.name


def error_for(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, PATH)
    message = str(info.value)
    assert "\n" not in message and "?." not in message
    return message


def test_a_minimal_config_takes_every_default_from_the_model() -> None:
    config = parse_config(MINIMAL, PATH)
    assert_model_defaults(config, except_for=set())
    assert_model_defaults(config.providers["local"], except_for={"env_var", "api_key"})


def test_empty_tables_take_every_default_from_the_model() -> None:
    text = (
        MINIMAL
        + """
[tools]
[server]
[store]
[sandbox]
[permissions]
[mcp_servers.fs]
command = "npx"
[providers.local.prices.m1]
input = 1
output = 2
"""
    )
    config = parse_config(text, PATH)
    for section in (config.tools, config.server, config.store, config.sandbox, config.permissions):
        assert_model_defaults(section, except_for=set())
    assert_model_defaults(config.sandbox.limits, except_for=set())
    assert_model_defaults(config.mcp_servers["fs"], except_for={"command"})
    assert_model_defaults(config.providers["local"].prices["m1"], except_for={"input", "output"})


@pytest.mark.parametrize("kind", list(ProviderKind))
def test_text_tool_call_recovery_defaults_on_for_openai_compatible_only(
    kind: ProviderKind,
) -> None:
    config = parse_config(MINIMAL.replace("default_model", f'kind = "{kind}"\ndefault_model'), PATH)
    loaded = config.providers["local"]
    built = ProviderConfig(name="x", kind=kind, api_base="http://h", default_model="m", models=())
    assert loaded.recover_text_tool_calls is built.recover_text_tool_calls
    assert loaded.recover_text_tool_calls is (kind is ProviderKind.OPENAI_COMPATIBLE)
    flipped = not loaded.recover_text_tool_calls
    text = MINIMAL.replace(
        "default_model",
        f'kind = "{kind}"\nrecover_text_tool_calls = {str(flipped).lower()}\ndefault_model',
    )
    assert parse_config(text, PATH).providers["local"].recover_text_tool_calls is flipped


def test_a_typo_at_the_top_is_named_not_reported_as_missing() -> None:
    message = error_for(MINIMAL.replace("default_provider", "defualt_provider"))
    assert message == (
        f"{PATH}: `defualt_provider` is not a known setting; fix: did you mean `default_provider`?"
    )


@pytest.mark.parametrize(
    ("addition", "key", "meant"),
    [
        ("timeout_sec = 5\n", "providers.local.timeout_sec", "timeout_secs"),
        ("[providers.local.prices.m1]\ninput = 1\noutput = 1\ncache_reed = 1\n",
         "providers.local.prices.m1.cache_reed", "cache_read"),
        ("[server]\nmax_sessions_per_tenat = 3\n", "server.max_sessions_per_tenat",
         "max_sessions_per_tenant"),
        ("[sandbox]\nmax_memory = 64\n", "sandbox.max_memory", "max_memory_mb"),
        ("[tools]\nread_limit = 2048\n", "tools.read_limit", "read_limit_bytes"),
        ("[store]\npool = 3\n", "store.pool", "pool_size"),
        ("[mcp_servers.fs]\ncommand = 'x'\nenabeld = false\n", "mcp_servers.fs.enabeld",
         "enabled"),
    ],
)  # fmt: skip
def test_a_typo_in_a_nested_table_is_named(addition: str, key: str, meant: str) -> None:
    message = error_for(MINIMAL + addition)
    assert message == f"{PATH}: `{key}` is not a known setting; fix: did you mean `{meant}`?"


def test_a_key_like_no_setting_is_to_be_removed() -> None:
    message = error_for("colour = 'blue'\n" + MINIMAL)
    assert message == f"{PATH}: `colour` is not a known setting; fix: remove it."


@pytest.mark.parametrize(
    "text",
    [
        "path = '/elsewhere'\n" + MINIMAL,
        MINIMAL + "name = 'other'\n",
        MINIMAL + "[mcp_servers.fs]\ncommand = 'x'\nname = 'y'\n",
        MINIMAL + "[sandbox]\nlimits = {}\n",
    ],
)
def test_fields_the_loader_fills_are_not_settings(text: str) -> None:
    assert "is not a known setting; fix: remove it." in error_for(text)


def test_free_maps_take_any_names() -> None:
    text = """
default_provider = "my-llm.v2"
[providers."my-llm.v2"]
api_base = "http://127.0.0.1:9/v1"
default_model = "org/model:7b"
[providers."my-llm.v2".prices."org/model:7b"]
input = 0
output = 0
[mcp_servers.anything_at-all]
url = "http://127.0.0.1:8080/mcp"
headers = { X-Whatever = "1" }
[permissions]
some_mcp__tool = "deny"
default = "ask"
[server]
tokens = { "any-token-of-16-chars" = "tenant_1" }
"""
    config = parse_config(text, PATH)
    assert config.providers["my-llm.v2"].prices["org/model:7b"].input == 0
    assert config.mcp_servers["anything_at-all"].headers == {"X-Whatever": "1"}
    assert config.permissions.for_tool("some_mcp__tool").value == "deny"
    assert config.permissions.default.value == "ask"
    assert config.server.tokens == {"any-token-of-16-chars": "tenant_1"}


def test_every_bound_names_a_field_of_its_class() -> None:
    classes = {Config, ProviderConfig, ModelPrice, McpServerConfig, ToolsConfig, ServerConfig}
    classes |= {StoreConfig, SandboxSettings, Limits}
    assert set(BOUNDS) == classes
    for cls, bounds in BOUNDS.items():
        assert set(bounds) <= settings_of(cls), cls


def test_openheim_init_writes_a_config_that_loads_clean(tmp_path: Path) -> None:
    env = {**os.environ, "OPENHEIM_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "openheim", "init"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    config = load_config(Paths.from_env(env).config_file)
    assert config.default_provider in config.providers
    for provider in config.providers.values():
        assert_model_defaults(provider, except_for={"env_var"})
