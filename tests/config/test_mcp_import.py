"""``openheim mcp import``: the pure conversion and rendering, then the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openheim.config.load import load_config, parse_config
from openheim.config.mcp_append import (
    Appended,
    append_to_config,
    describe,
    plan_append,
    render_toml,
    toml_key,
    toml_string,
)
from openheim.config.mcp_import import config_name, convert_servers, parse_servers, strip_jsonc
from openheim.config.model import McpServerConfig
from openheim.config.template import DEFAULT_CONFIG
from openheim.foundation.errors import ConfigError

CONFIG_PATH = Path("/home/u/.openheim/config.toml")
MINIMAL = """\
default_provider = "local"
[providers.local]
api_base = "http://127.0.0.1:9/v1"
default_model = "m1"
"""

CLAUDE_DESKTOP = {
    "globalShortcut": "Ctrl+Space",
    "mcpServers": {
        "filesystem": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
        },
        "github": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-github"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_SECRET_VALUE"},
            "cwd": "/tmp",
        },
    },
}


def servers_of(data: Any) -> tuple[dict[str, McpServerConfig], list[str]]:
    result = convert_servers(data, "in.json")
    return {s.name: s for s in result.servers}, list(result.warnings)


def round_trip(servers: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
    """Render, then read back with tomllib and with openheim's own loader."""
    text = render_toml(servers.values(), source="/x/in.json")
    assert set(tomllib.loads(text)["mcp_servers"]) == set(servers)
    return dict(parse_config(MINIMAL + "\n" + text, CONFIG_PATH).mcp_servers)


# --- input formats ---------------------------------------------------------------------------


def test_claude_desktop_stdio_servers_round_trip() -> None:
    servers, warnings = servers_of(CLAUDE_DESKTOP)
    assert warnings == []
    assert list(servers) == ["filesystem", "github"]
    github = servers["github"]
    assert github.command == "npx" and github.args[0] == "-y"
    assert github.env == {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_SECRET_VALUE"}
    assert github.cwd == "/tmp" and github.transport == "stdio" and github.enabled
    assert round_trip(servers) == servers


@pytest.mark.parametrize("kind", [None, "http", "streamable-http", "streamableHttp"])
def test_remote_servers_with_headers(kind: str | None) -> None:
    entry: dict[str, Any] = {"url": "https://mcp.example.com/mcp", "headers": {"X-Key": "k"}}
    if kind is not None:
        entry["type"] = kind
    servers, warnings = servers_of({"mcpServers": {"remote": entry}})
    assert warnings == []
    remote = servers["remote"]
    assert remote.transport == "http" and remote.command is None
    assert remote.headers == {"X-Key": "k"}
    assert round_trip(servers) == servers


def test_windsurf_server_url() -> None:
    servers, _ = servers_of({"mcpServers": {"w": {"serverUrl": "https://w.example/mcp"}}})
    assert servers["w"].url == "https://w.example/mcp"


def test_legacy_sse_is_imported_with_a_warning() -> None:
    servers, warnings = servers_of(
        {"mcpServers": {"old": {"type": "sse", "url": "http://localhost:3000/sse"}}}
    )
    assert servers["old"].url == "http://localhost:3000/sse"
    assert len(warnings) == 1 and "'old'" in warnings[0] and "Streamable HTTP" in warnings[0]


def test_vscode_jsonc_with_comments_and_trailing_commas() -> None:
    text = """{
      // VS Code .vscode/mcp.json
      "inputs": [{"type": "promptString", "id": "key"}],
      "servers": {
        "fetch": {"type": "stdio", "command": "uvx", "args": ["mcp-server-fetch",],},
        /* a remote one */
        "api": {"type": "http", "url": "https://api.example.com/mcp", "headers": {"A": "b"}},
      },
    }"""
    result = parse_servers(text, "mcp.json")
    assert result.warnings == ()
    fetch, api = result.servers
    assert (fetch.command, fetch.args) == ("uvx", ("mcp-server-fetch",))
    assert api.url == "https://api.example.com/mcp" and api.headers == {"A": "b"}


def test_vscode_user_settings_nest_servers_under_mcp() -> None:
    servers, _ = servers_of({"editor.fontSize": 12, "mcp": {"servers": {"t": {"command": "t"}}}})
    assert list(servers) == ["t"]


def test_zed_nested_command_flat_command_and_extensions() -> None:
    data = {
        "theme": "One Dark",
        "context_servers": {
            "old-style": {
                "command": {"path": "node", "args": ["server.js"], "env": {"K": "v"}},
                "settings": {},
            },
            "new-style": {"source": "custom", "command": "uvx", "args": ["mcp-server-time"]},
            "from-extension": {"source": "extension", "settings": {"token": "t"}},
        },
    }
    servers, warnings = servers_of(data)
    assert list(servers) == ["old-style", "new-style"]
    assert servers["old-style"].command == "node"
    assert servers["old-style"].args == ("server.js",) and servers["old-style"].env == {"K": "v"}
    assert servers["new-style"].args == ("mcp-server-time",)
    assert warnings == [
        "'from-extension': skipped, it has neither `command` nor `url` "
        "(a Zed extension runs it; add its command by hand)"
    ]
    assert round_trip(servers) == servers


def test_bare_mapping_of_servers() -> None:
    servers, _ = servers_of({"a": {"command": "a"}, "b": {"url": "http://localhost/mcp"}})
    assert servers["a"].transport == "stdio" and servers["b"].transport == "http"


def test_disabled_unknown_keys_and_entries_without_command_or_url() -> None:
    data = {
        "mcpServers": {
            "off": {"command": "x", "disabled": True, "autoApprove": [], "timeout": 60},
            "empty": {"args": ["--flag"]},
            "not-an-object": "npx",
        }
    }
    servers, warnings = servers_of(data)
    assert list(servers) == ["off"] and servers["off"].enabled is False
    assert warnings == [
        "'off': ignored unknown keys: autoApprove, timeout",
        "'empty': skipped, it has neither `command` nor `url`",
        "'not-an-object': skipped, it is a string, not an object",
    ]
    assert round_trip(servers) == servers


def test_names_are_made_valid_and_duplicates_skipped() -> None:
    data = {"mcpServers": {"My Server": {"command": "a"}, "My-Server": {"command": "b"}}}
    servers, warnings = servers_of(data)
    assert list(servers) == ["My-Server"] and servers["My-Server"].command == "a"
    assert "renamed to 'My-Server'" in warnings[0]
    assert warnings[1] == "'My-Server': skipped, the name 'My-Server' is already used above"
    assert config_name("@org/server github") == "org-server-github"
    assert config_name("db.prod") == "db.prod"
    assert config_name("日本") == "server"


def test_values_are_coerced_or_the_entry_skipped() -> None:
    data = {
        "mcpServers": {
            "ok": {"command": "srv", "args": ["--port", 8080, True], "env": {"N": 1}},
            "bad-args": {"command": "srv", "args": "--port 8080"},
            "bad-env": {"command": "srv", "env": {"K": None}},
            "bad-type": {"type": "websocket", "url": "ws://x"},
        }
    }
    servers, warnings = servers_of(data)
    assert servers["ok"].args == ("--port", "8080", "true") and servers["ok"].env == {"N": "1"}
    assert list(servers) == ["ok"]
    assert warnings == [
        "'bad-args': skipped, `args` must be a list, got a string",
        "'bad-env': skipped, `env.K` holds null, not a string",
        "'bad-type': skipped, its type 'websocket' is not supported (use stdio or http)",
    ]


def test_placeholders_are_reported() -> None:
    data = {"servers": {"k": {"command": "k", "env": {"TOKEN": "${input:token}"}}}}
    _, warnings = servers_of(data)
    assert warnings == [
        "'k': `${...}` placeholders are passed as written, openheim does not expand them; "
        "edit the values in the config"
    ]


def test_both_command_and_url_keeps_the_url() -> None:
    servers, warnings = servers_of({"mcpServers": {"x": {"command": "c", "url": "http://h/mcp"}}})
    assert servers["x"].url == "http://h/mcp" and servers["x"].command is None
    assert "both `command` and `url`" in warnings[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"mcpServers": {\n  "a": {"command": "x",}\n  "b": 1}', "invalid JSON at line 3"),
        ("[1, 2]", "expected a JSON object, got an array"),
        ('{"mcpServers": []}', "`mcpServers` must be an object of name: server, got an array"),
        ('{"theme": "dark"}', "no MCP servers found"),
        ("{}", "no MCP servers found"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_servers(text, "in.json")
    assert str(info.value).startswith("in.json: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_json_reports_column() -> None:
    with pytest.raises(ConfigError, match=r"line 1, column 16"):
        parse_servers('{"mcpServers": }', "in.json")


def test_strip_jsonc_keeps_strings_and_positions() -> None:
    text = '{"u": "http://x/*y*/", // tail\n "v": [1,2,], /* c\n c */ "w": "a\\"//b"}'
    stripped = strip_jsonc(text)
    assert len(stripped) == len(text) and stripped.count("\n") == text.count("\n")
    assert json.loads(stripped) == {"u": "http://x/*y*/", "v": [1, 2], "w": 'a"//b'}
    assert json.loads(strip_jsonc('{"a": 1} // no newline at the end')) == {"a": 1}


# --- rendering -------------------------------------------------------------------------------


@given(st.text())
def test_toml_strings_round_trip(text: str) -> None:
    assert tomllib.loads(f"k = {toml_string(text)}") == {"k": text}
    assert tomllib.loads(f"{toml_key(text)} = 1") == {text: 1}


def test_control_characters_quotes_and_unicode_round_trip() -> None:
    tricky = 'a"b\\c\nd\te\x00f\x7fg\u2028h😀i'
    server = McpServerConfig(
        name="db.prod",
        command=tricky,
        args=(tricky, ""),
        env={"WEIRD KEY": tricky},
        headers={},
    )
    text = render_toml([server])
    assert '[mcp_servers."db.prod"]' in text
    assert '[mcp_servers."db.prod".env]' in text and '"WEIRD KEY" = ' in text
    assert parse_config(MINIMAL + text, CONFIG_PATH).mcp_servers["db.prod"] == server


def test_names_that_are_not_bare_keys_are_quoted() -> None:
    text = render_toml([McpServerConfig(name="my server", command="x")])
    assert text == '[mcp_servers."my server"]\ncommand = "x"\n'
    assert tomllib.loads(text) == {"mcp_servers": {"my server": {"command": "x"}}}


def test_render_writes_only_non_default_keys() -> None:
    server = McpServerConfig(name="s", url="http://h/mcp", tool_timeout_secs=5.0)
    assert render_toml([server], source="/a/b.json") == (
        "# Imported from /a/b.json by `openheim mcp import`.\n"
        '[mcp_servers.s]\nurl = "http://h/mcp"\ntool_timeout_secs = 5.0\n'
    )
    assert render_toml([]) == ""


def test_describe_shows_names_not_secrets() -> None:
    servers, _ = servers_of(CLAUDE_DESKTOP)
    assert describe(servers["github"]) == (
        "github (stdio: npx -y @modelcontextprotocol/server-github; "
        "env: GITHUB_PERSONAL_ACCESS_TOKEN)"
    )
    remote = McpServerConfig(
        name="r", url="https://u:pw@h.example:8443/mcp?key=SECRET", headers={"Auth": "SECRET"}
    )
    assert describe(remote) == "r (http: https://h.example:8443/mcp?...; headers: Auth)"
    assert describe(McpServerConfig(name="w", command="x" * 100), limit=20).endswith("...)")


# --- the file ------------------------------------------------------------------------------


def test_plan_append_keeps_the_file_and_its_line_endings(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    original = MINIMAL.replace("\n", "\r\n").encode() + b"# last line, no newline"
    config.write_bytes(original)
    plan = plan_append(config, render_toml([McpServerConfig(name="s", command="x")]))
    assert plan.original == original and plan.text.startswith(original + b"\r\n")
    assert b"\n[mcp_servers.s]\r\n" in plan.text and b"\r\r" not in plan.text
    assert config.read_bytes() == original  # planning writes nothing


def test_a_config_that_fails_to_load_after_writing_is_restored(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(MINIMAL)
    with pytest.raises(ConfigError, match="invalid TOML"):
        append_to_config(config, Appended(b"[broken", MINIMAL.encode()))
    assert config.read_text() == MINIMAL
    fresh = tmp_path / "fresh" / "config.toml"
    with pytest.raises(ConfigError):
        append_to_config(fresh, Appended(b"[broken", None))
    assert not fresh.exists()


# --- the command ---------------------------------------------------------------------------


@attrs.frozen
class Run:
    returncode: int
    stdout: str
    stderr: str


def openheim(home: Path, *args: str, stdin: str | None = None) -> Run:
    env = dict(os.environ, OPENHEIM_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-m", "openheim", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def claude_file(tmp_path: Path) -> Path:
    data = json.loads(json.dumps(CLAUDE_DESKTOP))
    data["mcpServers"]["remote"] = {
        "url": "https://mcp.example.com/mcp",
        "headers": {"Authorization": "Bearer SECRET_HEADER"},
    }
    data["mcpServers"]["nothing"] = {"args": []}
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def test_import_into_a_fresh_home(tmp_path: Path, claude_file: Path) -> None:
    home = tmp_path / "home"
    result = openheim(home, "mcp", "import", str(claude_file))
    assert result.returncode == 0, result.stderr
    config_file = home / "config.toml"
    assert result.stdout.splitlines() == [
        "imported filesystem (stdio: npx -y @modelcontextprotocol/server-filesystem "
        "/Users/me/Desktop)",
        "imported github (stdio: npx -y @modelcontextprotocol/server-github; "
        "env: GITHUB_PERSONAL_ACCESS_TOKEN)",
        "imported remote (http: https://mcp.example.com/mcp; headers: Authorization)",
        f"added 3 servers to {config_file} (a new file from the `openheim init` template)",
    ]
    assert "'nothing': skipped, it has neither `command` nor `url`" in result.stderr
    assert "SECRET" not in result.stdout + result.stderr
    text = config_file.read_text()
    assert text.startswith(DEFAULT_CONFIG)
    assert f"# Imported from {claude_file} by `openheim mcp import`." in text
    config = load_config(config_file)
    assert config.mcp_servers["github"].env == {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_SECRET_VALUE"}
    assert config.mcp_servers["remote"].headers == {"Authorization": "Bearer SECRET_HEADER"}


def test_existing_config_keeps_its_comments_and_skips_known_names(
    tmp_path: Path, claude_file: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    original = (
        "# my precious comment\n"
        + MINIMAL
        + '[mcp_servers.github]  # hand-tuned\ncommand = "gh-mcp"'  # no final newline
    )
    (home / "config.toml").write_text(original)
    result = openheim(home, "mcp", "import", str(claude_file))
    assert result.returncode == 0, result.stderr
    assert "skipped github: already configured" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == f"added 2 servers to {home / 'config.toml'}"
    text = (home / "config.toml").read_text()
    assert text.startswith(original + "\n")
    servers = load_config(home / "config.toml").mcp_servers
    assert list(servers) == ["github", "filesystem", "remote"]
    assert servers["github"].command == "gh-mcp"

    again = openheim(home, "mcp", "import", str(claude_file))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"{home / 'config.toml'} unchanged"
    assert (home / "config.toml").read_text() == text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"mcpServers": {"a": {"command": "x"}', "invalid JSON at line 1, column 38"),
        ('{"mcpServers": 3}', "`mcpServers` must be an object"),
        (None, "no such file"),
    ],
)
def test_bad_input_leaves_the_config_untouched(
    tmp_path: Path, content: str | None, message: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(MINIMAL)
    source = tmp_path / "in.json"
    if content is not None:
        source.write_text(content)
    result = openheim(home, "mcp", "import", str(source))
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"openheim: error: {source}: ")
    assert message in lines[0]
    assert (home / "config.toml").read_text() == MINIMAL


def test_an_invalid_config_is_reported_and_left_alone(tmp_path: Path, claude_file: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    broken = "max_iteration = 3\n" + MINIMAL
    (home / "config.toml").write_text(broken)
    result = openheim(home, "mcp", "import", str(claude_file))
    assert result.returncode == 1
    assert "`max_iteration` is not a known setting" in result.stderr.splitlines()[-1]
    assert (home / "config.toml").read_text() == broken


def test_dry_run_prints_the_toml_and_writes_nothing(tmp_path: Path, claude_file: Path) -> None:
    home = tmp_path / "home"
    result = openheim(home, "mcp", "import", "--dry-run", str(claude_file))
    assert result.returncode == 0, result.stderr
    assert not home.exists()
    appended = tomllib.loads(result.stdout)["mcp_servers"]
    assert list(appended) == ["filesystem", "github", "remote"]
    assert "would import github (stdio: npx" in result.stderr
    assert "dry run: would add 3 servers to" in result.stderr

    home.mkdir()
    (home / "config.toml").write_text(MINIMAL)
    again = openheim(home, "mcp", "import", "--dry-run", str(claude_file))
    assert again.returncode == 0 and (home / "config.toml").read_text() == MINIMAL
    assert parse_config(MINIMAL + "\n" + again.stdout, CONFIG_PATH).mcp_servers.keys() == {
        "filesystem",
        "github",
        "remote",
    }


def test_stdin_and_a_file_without_servers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    piped = openheim(home, "mcp", "import", "-", stdin='{"servers": {"t": {"command": "t"}}}')
    assert piped.returncode == 0, piped.stderr
    assert "# Imported from stdin by" in (home / "config.toml").read_text()
    empty = openheim(home, "mcp", "import", "-", stdin='{"mcpServers": {}}')
    assert empty.returncode == 0
    assert empty.stdout.splitlines() == [
        "no MCP servers to import in <stdin>",
        f"{home / 'config.toml'} unchanged",
    ]
