"""The ``[server]`` config section and the tokens file: values, defaults, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from openheim.config.load import parse_config, read_tokens
from openheim.config.model import DisconnectPolicy, ServerConfig
from openheim.foundation.errors import ConfigError
from openheim.server.auth import LOCAL_TENANT, Access, bearer_token, is_loopback_host
from openheim.server.envelope import Envelope, FrameError, parse_envelope

BASE = """default_provider = "p"
[providers.p]
api_base = "http://localhost:11434/v1"
default_model = "m"
"""
TOKEN = "tok-0123456789abcdef"


def server(text: str, tmp_path: Path) -> ServerConfig:
    return parse_config(f"{BASE}\n[server]\n{text}", tmp_path / "config.toml").server


def test_defaults_and_values(tmp_path: Path) -> None:
    assert parse_config(BASE, tmp_path / "config.toml").server == ServerConfig()
    parsed = server(
        f"""workspace_root = "work"
tokens = {{ "{TOKEN}" = "team-a" }}
tokens_file = "/etc/openheim/tokens.toml"
disconnect_grace_secs = 0
slow_client_timeout_secs = 2.5
on_disconnect = "cancel"
max_sessions_per_tenant = 3
max_turns_per_tenant = 2
max_frame_bytes = 65536
allowed_origins = ["https://App.Example.com/"]
session_lease_secs = 5
replica_name = "replica-a"
""",
        tmp_path,
    )
    assert parsed.workspace_root == tmp_path / "work"
    assert parsed.tokens == {TOKEN: "team-a"}
    assert parsed.tokens_file == Path("/etc/openheim/tokens.toml")
    assert parsed.disconnect_grace_secs == 0
    assert parsed.slow_client_timeout_secs == 2.5
    assert parsed.on_disconnect is DisconnectPolicy.CANCEL
    assert (parsed.max_sessions_per_tenant, parsed.max_turns_per_tenant) == (3, 2)
    assert parsed.max_frame_bytes == 65536
    assert parsed.allowed_origins == ("https://app.example.com",)
    assert (parsed.session_lease_secs, parsed.replica_name) == (5, "replica-a")
    assert TOKEN not in repr(parsed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('tokens = { "short" = "a" }', "`server.tokens` has a token for 'a' that is too weak"),
        (f'tokens = {{ "{TOKEN}" = "a/b" }}', "`server.tokens` names tenant 'a/b'"),
        ('on_disconnect = "drop"', "`server.on_disconnect` is 'drop'; fix: use \"keep\""),
        ("slow_client_timeout_secs = 0", "`server.slow_client_timeout_secs` must be greater"),
        ("max_turns_per_tenant = 0", "`server.max_turns_per_tenant` must be at least 1"),
        ("session_lease_secs = 0", "`server.session_lease_secs` must be greater than 0"),
        ('allowed_origins = ["https://x.example/app"]', "which is not an origin"),
        ("port = 80", "`server.port` is not a known setting"),
    ],
)
def test_errors_are_one_line(text: str, expected: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        server(text, tmp_path)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_tokens_file_is_merged(tmp_path: Path) -> None:
    other = "other-0123456789abcdef"
    (tmp_path / "tokens.toml").write_text(f'[tokens]\n"{other}" = "b"\n')
    text = f'{BASE}\n[server]\ntokens = {{ "{TOKEN}" = "a" }}\ntokens_file = "tokens.toml"\n'
    config = parse_config(text, tmp_path / "config.toml")
    assert read_tokens(config) == {TOKEN: "a", other: "b"}
    (tmp_path / "tokens.toml").write_text(f'[tokens]\n"{TOKEN}" = "b"\n')
    with pytest.raises(ConfigError, match="gives a token to two tenants"):
        read_tokens(config)
    (tmp_path / "tokens.toml").unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        read_tokens(config)


def test_access_rules() -> None:
    open_access = Access()
    assert open_access.tenant_for(None) == LOCAL_TENANT
    assert open_access.host_allowed("localhost:1217")
    assert open_access.host_allowed("[::1]:1217")
    assert not open_access.host_allowed("evil.example:1217")
    assert open_access.origin_allowed(None)
    assert open_access.origin_allowed("http://127.0.0.1:5173")
    assert not open_access.origin_allowed("null")
    assert not open_access.origin_allowed("http://localhost.evil.example")
    locked = Access({TOKEN: "a"}, frozenset({"https://app.example.com"}))
    assert locked.tenant_for(TOKEN) == "a"
    assert locked.tenant_for(TOKEN + "x") is None
    assert locked.tenant_for(None) is None
    assert locked.host_allowed("anything.example")
    assert locked.origin_allowed("https://APP.example.com/")
    assert bearer_token(f"bearer {TOKEN}") == TOKEN
    assert bearer_token(f"Basic {TOKEN}") is None
    assert is_loopback_host("127.8.9.10") and not is_loopback_host("0.0.0.0")


def test_envelope_core() -> None:
    assert parse_envelope('{"channel": "fs", "data": {"action": "list"}}') == Envelope(
        "fs", {"action": "list"}
    )
    assert parse_envelope('{"channel": "agent", "data": null}') == Envelope("agent", None)
    assert parse_envelope("[") == FrameError("Expecting value at line 1 column 2")
    assert parse_envelope("null") == FrameError("expected a JSON object, got null")
    assert parse_envelope('{"channel": 1, "data": 2}') == FrameError(
        "unknown channel 1, expected `agent` or `fs`"
    )
    assert parse_envelope("[" * 100_000) == FrameError("nested too deeply")
