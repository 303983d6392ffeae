from pathlib import Path

import pytest

from openheim.config.load import load_config, parse_config
from openheim.config.model import ProviderKind
from openheim.config.template import DEFAULT_CONFIG, write_default_config
from openheim.foundation.errors import ConfigError
from openheim.foundation.models import ReasoningLevel

PATH = Path("/home/u/.openheim/config.toml")

MINIMAL = """
default_provider = "local"
[providers.local]
api_base = "http://127.0.0.1:9/v1/"
default_model = "m1"
models = ["m1", "m2"]
"""


def error_for(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, PATH)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_default_template_parses() -> None:
    config = parse_config(DEFAULT_CONFIG, PATH)
    assert config.default_provider == "openai"
    assert config.max_iterations == 10
    assert config.providers["openai"].kind is ProviderKind.OPENAI
    assert config.providers["ollama"].kind is ProviderKind.OPENAI_COMPATIBLE
    assert config.providers["gemini"].timeout_secs == 120.0


def test_minimal_config_defaults_and_trims_api_base() -> None:
    config = parse_config(MINIMAL, PATH)
    local = config.providers["local"]
    assert local.api_base == "http://127.0.0.1:9/v1"
    assert local.kind is ProviderKind.OPENAI_COMPATIBLE
    assert local.env_var is None and local.api_key is None
    assert local.max_retries == 4


def test_explicit_kind_overrides_name() -> None:
    config = parse_config(MINIMAL.replace("models =", 'kind = "openai"\nmodels ='), PATH)
    assert config.providers["local"].kind is ProviderKind.OPENAI


def test_mcp_servers_are_parsed_and_kept() -> None:
    text = (
        MINIMAL
        + """
[mcp_servers.fs]
command = "npx"
args = ["-y", "server"]
env = { TOKEN = "x" }
[mcp_servers.remote]
url = "http://127.0.0.1:8080/mcp"
headers = { Authorization = "Bearer t" }
startup_timeout_secs = 5
"""
    )
    config = parse_config(text, PATH)
    assert config.mcp_servers["fs"].args == ("-y", "server")
    assert config.mcp_servers["fs"].transport == "stdio"
    assert config.mcp_servers["remote"].transport == "http"
    assert config.mcp_servers["remote"].startup_timeout_secs == 5.0


def test_toml_syntax_error_names_file_and_line() -> None:
    message = error_for("default_provider = \n")
    assert str(PATH) in message and "invalid TOML" in message and "line 1" in message


def test_missing_default_provider() -> None:
    message = error_for(MINIMAL.replace('default_provider = "local"', ""))
    assert "`default_provider` is missing" in message
    assert 'default_provider = "local"' in message


def test_unknown_default_provider() -> None:
    message = error_for(MINIMAL.replace('"local"', '"nope"', 1))
    assert "`default_provider` names 'nope'" in message and "local" in message


def test_wrong_type_names_key() -> None:
    message = error_for(MINIMAL + "timeout_secs = 'slow'\n")
    assert "`providers.local.timeout_secs` must be a number, got a string" in message


def test_bool_is_not_an_integer() -> None:
    message = error_for("max_iterations = true\n" + MINIMAL)
    assert "`max_iterations` must be an integer, got true or false" in message


def test_unknown_key_suggests_the_right_one() -> None:
    message = error_for("max_iteration = 3\n" + MINIMAL)
    assert "`max_iteration` is not a known setting" in message
    assert "did you mean `max_iterations`" in message


def test_bad_api_base() -> None:
    message = error_for(MINIMAL.replace("http://127.0.0.1:9/v1/", "localhost:11434"))
    assert "`providers.local.api_base` is not an http(s) URL" in message


def test_bad_kind() -> None:
    message = error_for(MINIMAL.replace("models =", 'kind = "cohere"\nmodels ='))
    assert "`providers.local.kind` is 'cohere'" in message
    assert "openai_compatible" in message


def test_no_providers() -> None:
    assert "`providers` has no entries" in error_for('default_provider = "x"\n')


def test_mcp_server_needs_command_or_url() -> None:
    message = error_for(MINIMAL + "[mcp_servers.x]\nargs = []\n")
    assert "`mcp_servers.x` needs exactly one of `command`" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Run `openheim init` to create one"):
        load_config(tmp_path / "config.toml")


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    path = tmp_path / "home" / "config.toml"
    write_default_config(path)
    assert load_config(path).default_provider == "openai"
    path.write_text(MINIMAL)
    with pytest.raises(ConfigError, match="already exists.*--force"):
        write_default_config(path)
    assert path.read_text() == MINIMAL
    write_default_config(path, force=True)
    assert path.read_text() == DEFAULT_CONFIG


def test_rate_limits_prices_and_text_tool_call_switch() -> None:
    text = MINIMAL.replace(
        'models = ["m1", "m2"]',
        """models = ["m1", "m2"]
max_in_flight = 8
requests_per_minute = 120
[providers.local.prices.m1]
input = 2.5
output = 10
cache_read = 0.25""",
    )
    local = parse_config(text, PATH).providers["local"]
    assert local.max_in_flight == 8 and local.requests_per_minute == 120.0
    assert local.recover_text_tool_calls is True  # default on for OpenAI-compatible servers
    price = local.prices["m1"]
    assert (price.input, price.output, price.cache_read, price.cache_write) == (2.5, 10, 0.25, None)
    from openheim.foundation.models import Usage

    cost = price.cost(
        Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=400_000)
    )
    assert cost == 600_000 * 2.5 / 1e6 + 400_000 * 0.25 / 1e6 + 100_000 * 10 / 1e6


def test_price_needs_input_and_output() -> None:
    message = error_for(MINIMAL + "[providers.local.prices.m1]\ninput = 1\n")
    assert "`providers.local.prices.m1.output` is missing" in message


def test_negative_price_is_refused() -> None:
    message = error_for(MINIMAL + "[providers.local.prices.m1]\ninput = -1\noutput = 1\n")
    assert "`providers.local.prices.m1.input` must be at least 0" in message


def test_readme_config_example_is_valid() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    example = section[section.index("```toml") + len("```toml") : section.index("```\n", 10)]
    config = parse_config(example, PATH)
    assert set(config.providers) == {"openai", "anthropic", "gemini", "ollama"}
    assert config.providers["openai"].prices["gpt-4.1"].cache_read == 0.5


def test_permissions_policy() -> None:
    from openheim.permissions import Policy

    config = parse_config(
        MINIMAL + '[permissions]\ndefault = "ask"\nread_file = "allow"\nexecute_command = "deny"\n',
        PATH,
    )
    assert config.permissions.for_tool("read_file") is Policy.ALLOW
    assert config.permissions.for_tool("execute_command") is Policy.DENY
    assert config.permissions.for_tool("write_file") is Policy.ASK
    assert parse_config(MINIMAL, PATH).permissions.for_tool("anything") is Policy.ALLOW
    message = error_for(MINIMAL + '[permissions]\nwrite_file = "maybe"\n')
    assert "`permissions.write_file` is 'maybe'; fix: use one of allow, ask, deny." in message


def test_reasoning_per_provider_and_per_model() -> None:
    config = parse_config(MINIMAL, PATH)
    assert config.providers["local"].reasoning_for("m1") is ReasoningLevel.OFF
    text = MINIMAL + 'reasoning = "low"\n[providers.local.reasoning_by_model]\n"m2" = "high"\n'
    local = parse_config(text, PATH).providers["local"]
    assert local.reasoning is ReasoningLevel.LOW
    assert local.reasoning_for("m1") is ReasoningLevel.LOW
    assert local.reasoning_for("m2") is ReasoningLevel.HIGH
    inline = MINIMAL + 'reasoning_by_model = { "m1" = "medium" }\n'
    assert parse_config(inline, PATH).providers["local"].reasoning_for("m1") is (
        ReasoningLevel.MEDIUM
    )


def test_unknown_reasoning_level_names_the_key_and_the_choices() -> None:
    message = error_for(MINIMAL + 'reasoning = "max"\n')
    assert "`providers.local.reasoning` is 'max'" in message
    assert '"off", "low", "medium" or "high"' in message
    message = error_for(MINIMAL + '[providers.local.reasoning_by_model]\n"m1" = 3\n')
    assert "`providers.local.reasoning_by_model.m1` must be a string" in message
