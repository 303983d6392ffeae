"""What a sandboxed command inherits: an allowlist for tenants, a scrubbed copy locally."""

from __future__ import annotations

from pathlib import Path

from openheim.config.load import parse_config
from openheim.sandbox.environment import NONINTERACTIVE_ENV, local_env, tenant_env
from openheim.sandbox.factory import known_secrets

SERVER_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OPENAI_API_KEY": "sk-live-0123456789abcdef",
    "OPENHEIM_HOME": "/srv/openheim",
    "HOME": "/root",
    "AWS_SECRET_ACCESS_KEY": "aws-0123456789",
    "DATABASE_URL": "postgresql://app:pa55w0rd-long-enough@db/app",
    "GITHUB_TOKEN": "ghp_0123456789",
    "MY_PASSWORD_FILE": "/run/pw",
    "EDITOR": "vim",
    "COLUMNS": "80",
}


def test_a_tenant_gets_the_allowlist_and_nothing_else() -> None:
    env = tenant_env(SERVER_ENV, home=Path("/work/alice"), tmp="/tmp")
    assert env == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        **NONINTERACTIVE_ENV,
        "HOME": "/work/alice",
        "TMPDIR": "/tmp",
        "USER": "openheim",
        "LOGNAME": "openheim",
    }


def test_an_operator_may_pass_a_variable_through_to_tenants() -> None:
    env = tenant_env(SERVER_ENV, home=Path("/w"), passthrough=("COLUMNS",))
    assert env["COLUMNS"] == "80"
    assert "OPENAI_API_KEY" not in env


def test_a_tenant_without_path_gets_a_sane_one() -> None:
    assert "/usr/bin" in tenant_env({}, home=Path("/w"))["PATH"].split(":")


def test_local_env_drops_known_secrets_by_name_value_and_glob() -> None:
    env = local_env(
        {**SERVER_ENV, "COPY_OF_KEY_VALUE": "sk-live-0123456789abcdef", "SHORT": "pa55"},
        secrets=["sk-live-0123456789abcdef", "pa55w0rd-long-enough", "pa55"],
        secret_names=["OPENAI_API_KEY"],
        exclude=("*_KEY", "*_TOKEN", "*_SECRET", "*PASSWORD*"),
    )
    for name in (
        "OPENAI_API_KEY",
        "COPY_OF_KEY_VALUE",
        "DATABASE_URL",
        "GITHUB_TOKEN",
        "MY_PASSWORD_FILE",
        "SHORT",  # exactly a known secret
    ):
        assert name not in env, name
    # A *_SECRET_ACCESS_KEY ends in _KEY; the user's own settings stay, made non-interactive.
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["HOME"] == "/root" and env["COLUMNS"] == "80"
    assert env["EDITOR"] == "true" and env["PAGER"] == "cat"


def test_a_short_secret_inside_a_value_does_not_strip_it() -> None:
    env = local_env({"PATH": "/usr/bin:/bin"}, secrets=["bin"])
    assert env["PATH"] == "/usr/bin:/bin"


def test_passthrough_keeps_a_variable_on_purpose() -> None:
    env = local_env(SERVER_ENV, secrets=[], exclude=("*_TOKEN",), passthrough=("GITHUB_TOKEN",))
    assert env["GITHUB_TOKEN"] == "ghp_0123456789"


def test_known_secrets_come_from_the_config_and_its_variables(tmp_path: Path) -> None:
    config = parse_config(
        """default_provider = "a"
[providers.a]
kind = "openai"
api_base = "http://127.0.0.1:1/v1"
default_model = "m"
env_var = "A_KEY"
[providers.b]
kind = "anthropic"
api_base = "http://127.0.0.1:1/v1"
default_model = "m"
api_key = "inline-key-0123456789"
[mcp_servers.x]
command = "x"
env = { DEBUG = "1" }
[server]
tokens = { "tenant-token-0123456789" = "alice" }
metrics_token = "metrics-0123456789abcdef"
[store]
url = "postgresql://u:store-password@h/db"
""",
        tmp_path / "config.toml",
    )
    values, names = known_secrets(config, {"A_KEY": "a-key-value-0123456789"})
    for secret in (
        "a-key-value-0123456789",
        "inline-key-0123456789",
        "tenant-token-0123456789",
        "metrics-0123456789abcdef",
        "store-password",
    ):
        assert secret in values
    assert "1" not in values  # an MCP server's setting is not a secret to strip
    assert {"A_KEY", "OPENHEIM_STORE_URL", "OPENHEIM_METRICS_TOKEN"} <= set(names)
