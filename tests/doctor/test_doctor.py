"""``openheim doctor`` against real parts: the fake LLM and small HTTP stubs on 127.0.0.1, the
test MCP server as a subprocess, a throwaway PostgreSQL, and the CLI itself as a subprocess."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import trio

from openheim.config.paths import Paths
from openheim.doctor import Report, Row, Status, render_json, render_table, run_doctor
from openheim.testing import open_fake_llm
from tests.e2e.conftest import API_KEY, Home, home  # noqa: F401 (the e2e fixture)
from tests.mcp.conftest import SERVER_APP

REJECTED_KEY = "sk-rejected-secret-0123456789"
OTHER_KEY = "sk-ant-other-secret-0123456789"
DB_PASSWORD = "hunter2-db-secret"


def write_home(root: Path, config: str) -> Paths:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text(config)
    return Paths(root)


def q(text: object) -> str:
    """A TOML string (JSON's escaping is valid TOML for these paths)."""
    return json.dumps(str(text))


def provider(name: str, api_base: str, **options: object) -> str:
    lines = [f"[providers.{name}]", f"api_base = {q(api_base)}", 'default_model = "m"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def by_label(report: Report) -> dict[str, Row]:
    return {row.label: row for row in report.rows}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_hidden(report: Report, *secrets: str) -> None:
    shown = render_json(report) + render_table(report)
    for secret in secrets:
        assert secret not in shown


async def serve_unauthorized(nursery: trio.Nursery) -> tuple[str, list[tuple[str, dict[str, str]]]]:
    """An HTTP server answering 401 to everything, echoing the key as OpenAI's message does."""
    seen: list[tuple[str, dict[str, str]]] = []

    async def handle(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        seen.append((head[0], headers))
        key = headers.get("authorization") or headers.get("x-api-key") or ""
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}}).encode()
        await stream.send_all(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await stream.aclose()

    listeners = await nursery.start(trio.serve_tcp, handle, 0)
    port = listeners[0].socket.getsockname()[1]
    return f"http://127.0.0.1:{port}", seen


async def test_a_healthy_setup_is_all_ok(tmp_path: Path) -> None:
    async with open_fake_llm() as llm:
        paths = write_home(
            tmp_path / "home",
            f"""default_provider = "fake"
{provider("fake", llm.base_url, kind="openai", env_var="FAKE_KEY")}
{provider("local", llm.base_url)}
[mcp_servers.tools]
command = {q(sys.executable)}
args = [{q(SERVER_APP)}]
startup_timeout_secs = 20

[mcp_servers.off]
command = "never-started"
enabled = false
""",
        )
        report = await run_doctor({"FAKE_KEY": API_KEY}, paths=paths)
        probes = [(r.method, r.path, r.headers.get("authorization")) for r in llm.requests]
    rows = by_label(report)
    assert not report.failed, render_table(report)
    assert list(rows) == [
        "config",
        "provider fake key",
        "provider fake endpoint",
        "provider fake context",
        "provider local key",
        "provider local endpoint",
        "provider local context",
        "mcp tools",
        "mcp off",
        "store file",
        "sandbox",
        "disk",
    ]
    assert rows["config"].detail.startswith("loaded: 2 providers, 1 MCP server")
    assert rows["provider fake key"].detail == "found in $FAKE_KEY"
    context = rows["provider fake context"]
    assert context.detail == "m: window 8,192 tokens (fallback), compacts at 80%"
    assert context.data["context_window"] == 8192 and context.data["compact_at"] == 0.8
    assert context.fix is not None and "`context_window` in [providers.fake]" in context.fix
    assert rows["provider local key"].detail == "not needed (openai_compatible server)"
    endpoint = rows["provider fake endpoint"]
    assert endpoint.status is Status.OK
    assert "no model listing: HTTP 404" in endpoint.detail
    assert isinstance(endpoint.data["latency_ms"], int)
    # The probe authenticates as a real request would, and costs no tokens.
    assert ("GET", "/v1/models", f"Bearer {API_KEY}") in probes
    assert ("GET", "/v1/models", None) in probes
    mcp = rows["mcp tools"]
    assert mcp.status is Status.OK and mcp.detail.startswith("connected in ")
    assert mcp.data["tool_count"] == len(mcp.data["tools"]) >= 5
    assert "echo" in mcp.data["tools"]
    assert rows["mcp off"].status is Status.SKIP
    history = paths.history_dir
    assert rows["store file"].detail == f"{history} is writable (0 conversations)"
    assert list(history.iterdir()) == []  # the probe file is gone
    assert_hidden(report, API_KEY)
    assert "\x1b[32mok" in render_table(report, colour=True)  # a terminal gets colour


async def test_keys_missing_rejected_and_endpoints_down(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """Only the default provider can fail: the others warn, or are skipped without a key."""
    stub, seen = await serve_unauthorized(nursery)
    stuck = socket.socket()  # the kernel accepts connections; nobody ever answers
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(8)
    stuck_port = stuck.getsockname()[1]
    paths = write_home(
        tmp_path / "home",
        f"""default_provider = "openai"
{provider("openai", f"{stub}/openai/v1", env_var="OPENAI_KEY")}
{provider("anthropic", f"{stub}/anthropic/v1", env_var="ANTHROPIC_KEY")}
{provider("claude", f"{stub}/claude/v1", kind="anthropic", env_var="CLAUDE_KEY")}
{provider("gemini", f"{stub}/gemini/v1beta", api_key=REJECTED_KEY)}
{provider("nokey", f"{stub}/nokey/v1", kind="openai")}
{provider("gone", f"http://127.0.0.1:{closed_port()}/v1")}
{provider("stuck", f"http://127.0.0.1:{stuck_port}/v1", timeout_secs=0.5)}
""",
    )
    env = {"OPENAI_KEY": REJECTED_KEY, "ANTHROPIC_KEY": OTHER_KEY}
    started = trio.current_time()
    with stuck:
        report = await run_doctor(env, paths=paths)
    assert trio.current_time() - started < 5  # the stuck endpoint delayed only its own row
    rows = by_label(report)
    assert report.failed

    rejected = rows["provider openai endpoint"]
    assert rejected.status is Status.FAIL
    assert rejected.detail.startswith("key rejected (HTTP 401): Incorrect API key provided: ")
    assert rejected.fix is not None and "$OPENAI_KEY" in rejected.fix
    # The default provider is the only one that fails the report.
    failures = [row.label for row in report.rows if row.status is Status.FAIL]
    assert failures == ["provider openai endpoint"]

    # Not the default provider: a rejected key makes it unusable, not the setup broken.
    anthropic = rows["provider anthropic endpoint"]
    assert anthropic.status is Status.WARN
    assert anthropic.detail.startswith("key rejected (HTTP 401): ")
    assert anthropic.fix is not None and "$ANTHROPIC_KEY" in anthropic.fix
    assert rows["provider gemini key"].detail == "inline `api_key` in the config"
    gemini = rows["provider gemini endpoint"]
    assert gemini.status is Status.WARN and gemini.detail.startswith("key rejected (HTTP 401)")

    # Not the default and no key: one skip row with the reason, and no request at all.
    claude = rows["provider claude"]
    assert (claude.status, claude.detail) == (
        Status.SKIP,
        "no key ($CLAUDE_KEY unset); not the default provider, not probed",
    )
    assert claude.fix == "export CLAUDE_KEY=<your key>"
    assert "provider claude key" not in rows and "provider claude endpoint" not in rows
    nokey = rows["provider nokey"]
    assert nokey.status is Status.SKIP
    assert nokey.detail == (
        "no key (no `env_var` and no `api_key`); not the default provider, not probed"
    )
    assert nokey.fix is not None and 'env_var = "NOKEY_API_KEY"' in nokey.fix

    gone = rows["provider gone endpoint"]
    assert gone.status is Status.WARN and gone.detail.startswith("unreachable: ")
    assert gone.fix is not None and "`api_base` in [providers.gone]" in gone.fix
    stuck_row = rows["provider stuck endpoint"]
    assert (stuck_row.status, stuck_row.detail) == (
        Status.WARN,
        "unreachable: no answer within 0.5 s",
    )

    # Each kind authenticated with its dialect's own headers; skipped ones were never asked.
    headers = {line.split()[1]: h for line, h in seen}
    assert sorted(headers) == ["/anthropic/v1/models", "/gemini/v1beta/models", "/openai/v1/models"]
    assert headers["/openai/v1/models"]["authorization"] == f"Bearer {REJECTED_KEY}"
    assert headers["/anthropic/v1/models"]["x-api-key"] == OTHER_KEY
    assert headers["/anthropic/v1/models"]["anthropic-version"]
    assert headers["/gemini/v1beta/models"]["x-goog-api-key"] == REJECTED_KEY
    assert_hidden(report, REJECTED_KEY, OTHER_KEY)


async def test_the_default_provider_fails_without_a_key_or_when_unreachable(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    stub, seen = await serve_unauthorized(nursery)
    paths = write_home(
        tmp_path / "keyless",
        'default_provider = "anthropic"\n'
        + provider("anthropic", f"{stub}/anthropic/v1", env_var="ANTHROPIC_KEY"),
    )
    rows = by_label(await run_doctor({}, paths=paths))
    missing = rows["provider anthropic key"]
    assert (missing.status, missing.detail) == (Status.FAIL, "MISSING: $ANTHROPIC_KEY is not set")
    assert missing.fix == "export ANTHROPIC_KEY=<your key>"
    # Without a key the default endpoint is still probed: reachable, the key row carries the
    # failure.
    endpoint = rows["provider anthropic endpoint"]
    assert endpoint.status is Status.OK
    assert endpoint.detail.endswith("(key not checked: none configured)")
    [(line, headers)] = seen
    assert line.split()[:2] == ["GET", "/anthropic/v1/models"]
    assert "x-api-key" not in headers  # no key to send
    assert headers["anthropic-version"]

    paths = write_home(
        tmp_path / "gone",
        'default_provider = "local"\n'
        + provider("local", f"http://127.0.0.1:{closed_port()}/v1")
        + provider("spare", f"http://127.0.0.1:{closed_port()}/v1"),
    )
    rows = by_label(await run_doctor({}, paths=paths))
    assert rows["provider local endpoint"].status is Status.FAIL
    assert rows["provider spare endpoint"].status is Status.WARN
    assert rows["provider local endpoint"].detail.startswith("unreachable: ")


async def test_broken_mcp_servers_fail_with_a_fix(tmp_path: Path) -> None:
    paths = write_home(
        tmp_path / "home",
        f"""default_provider = "local"
{provider("local", f"http://127.0.0.1:{closed_port()}/v1")}
[mcp_servers.missing]
command = "openheim-no-such-command"

[mcp_servers.quits]
command = {q(sys.executable)}
args = ["-c", "import sys; sys.exit(3)"]
""",
    )
    rows = by_label(await run_doctor({}, paths=paths))
    missing = rows["mcp missing"]
    assert missing.status is Status.FAIL
    assert missing.detail.startswith("failed: command not found: openheim-no-such-command")
    assert missing.fix == "install openheim-no-such-command or correct `command` in " + (
        "[mcp_servers.missing]"
    )
    quits = rows["mcp quits"]
    assert quits.status is Status.FAIL and quits.detail.startswith("failed: ")
    assert quits.fix is not None and str(paths.logs_dir / "mcp-quits.log") in quits.fix


async def test_file_store_that_cannot_be_written_fails(tmp_path: Path) -> None:
    config = 'default_provider = "local"\n' + provider("local", "http://127.0.0.1:1/v1")
    paths = write_home(tmp_path / "home", config)
    paths.history_dir.write_text("a file where the folder should be")
    row = by_label(await run_doctor({}, paths=paths))["store file"]
    assert row.status is Status.FAIL
    assert row.detail.startswith(f"{paths.history_dir} is not writable")
    assert row.fix is not None


async def test_postgres_store_reports_schema_version_without_the_password(
    tmp_path: Path, postgres_url: str
) -> None:
    import psycopg

    from openheim.store.postgres import MIGRATIONS, migrate

    url = postgres_url.replace("postgres@", f"postgres:{DB_PASSWORD}@")  # trust auth ignores it
    paths = write_home(
        tmp_path / "home",
        f'default_provider = "local"\n[store]\nurl = {q(url)}\n'
        + provider("local", "http://127.0.0.1:1/v1"),
    )
    fresh = by_label(await run_doctor({}, paths=paths))["store postgresql"]
    assert fresh.status is Status.OK
    assert fresh.detail.endswith("schema not created yet (made on first use)")
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        migrate(connection)
    report = await run_doctor({}, paths=paths)
    row = by_label(report)["store postgresql"]
    newest = MIGRATIONS[-1][0]  # 2 since session leases
    assert row.status is Status.OK and row.detail.endswith(f"; schema version {newest}")
    assert row.data["schema_version"] == newest
    assert row.detail.startswith(postgres_url.replace("postgres@", "") + " connected in ")
    assert_hidden(report, DB_PASSWORD)


async def test_unreachable_postgres_fails_without_the_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    paths = write_home(
        tmp_path / "home",
        'default_provider = "local"\n' + provider("local", "http://127.0.0.1:1/v1"),
    )
    url = f"postgresql://openheim:{DB_PASSWORD}@127.0.0.1:{closed_port()}/history"
    report = await run_doctor({"OPENHEIM_STORE_URL": url}, paths=paths)
    row = by_label(report)["store postgresql"]
    assert row.status is Status.FAIL and "cannot connect" in row.detail
    assert row.fix is not None and "$OPENHEIM_STORE_URL" in row.fix
    assert_hidden(report, DB_PASSWORD)


async def test_server_section_tokens_and_workspace(tmp_path: Path) -> None:
    token = "tok-0123456789abcdefghij"
    base = 'default_provider = "local"\n' + provider("local", "http://127.0.0.1:1/v1")
    paths = write_home(
        tmp_path / "home",
        f'{base}[server]\ntokens_file = "missing-tokens.toml"\n',
    )
    row = by_label(await run_doctor({}, paths=paths))["server"]
    assert row.status is Status.FAIL and "missing-tokens.toml" in row.detail
    assert row.fix == "create it with a [tokens] table or remove the setting"

    paths.config_file.write_text(
        f'{base}[server]\nworkspace_root = {q(tmp_path)}\ntokens = {{ "{token}" = "team" }}\n'
    )
    paths.config_file.chmod(0o644)
    report = await run_doctor({}, paths=paths)
    rows = by_label(report)
    assert rows["server"].status is Status.OK
    assert rows["server"].detail == f"1 token for 1 tenant; workspace {tmp_path}"
    permissions = rows["config permissions"]
    assert permissions.status is Status.WARN and "server.tokens" in permissions.detail
    assert permissions.fix == f"chmod 600 {paths.config_file}"
    failures = [row.label for row in report.rows if row.status is Status.FAIL]
    assert failures == ["provider local endpoint"]  # nothing listens on port 1
    assert_hidden(report, token)


async def test_an_invalid_config_is_one_row_and_nothing_else_runs(tmp_path: Path) -> None:
    config = 'default_provider = "x"\ncolour = 3\n' + provider("x", "http://h/v1")
    paths = write_home(tmp_path / "home", config)
    report = await run_doctor({}, paths=paths)
    assert [row.label for row in report.rows] == ["config"]
    row = report.rows[0]
    assert row.status is Status.FAIL and report.failed
    assert row.detail == f"{paths.config_file}: `colour` is not a known setting"
    assert row.fix == "remove it"

    missing = await run_doctor({}, paths=Paths(tmp_path / "nowhere"))
    assert missing.rows[0].fix == "run `openheim init`"


async def test_cli_end_to_end(home: Home) -> None:  # noqa: F811 (the fixture)
    result = await home.run("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"openheim doctor: {home.path / 'config.toml'}"
    assert any(line.startswith("ok    provider fake key ") for line in lines)
    assert lines[-1].startswith("0 failed, ")
    assert API_KEY not in result.stdout + result.stderr

    as_json = await home.run("doctor", "--json")
    assert as_json.returncode == 0
    payload: dict[str, Any] = json.loads(as_json.stdout)
    assert payload["ok"] is True
    statuses: Mapping[str, str] = {
        " ".join(p for p in (r["check"], r["subject"], r["aspect"]) if p): r["status"]
        for r in payload["rows"]
    }
    assert statuses["provider fake endpoint"] == "ok"

    env = home.env()
    del env["FAKE_LLM_KEY"]
    failing = await home.run("doctor", env=env)
    assert failing.returncode == 1
    fix_line = next(i for i, line in enumerate(failing.stdout.splitlines()) if "MISSING" in line)
    detail_column = failing.stdout.splitlines()[fix_line].index("MISSING")
    fix = failing.stdout.splitlines()[fix_line + 1]
    assert fix.index("fix: export FAKE_LLM_KEY=<your key>") == detail_column

    (home.path / "config.toml").write_text("default_provider = \n")
    broken = await home.run("doctor")
    assert broken.returncode == 1
    lines = broken.stdout.splitlines()
    assert lines[2].startswith("FAIL  config  ") and "invalid TOML" in lines[2]
    assert lines[3].strip().startswith("fix: correct the TOML at the place named")


async def test_sandbox_row_names_the_backend_and_fails_when_tenants_would_be_unconfined(
    tmp_path: Path,
) -> None:
    async with open_fake_llm() as llm:
        base = f'default_provider = "fake"\n{provider("fake", llm.base_url)}\n'
        paths = write_home(tmp_path / "auto", base)
        auto = by_label(await run_doctor({}, paths=paths))["sandbox"]
        tenant_config = (
            base + '[server]\ntokens = { "tok-0123456789abcdef" = "alice" }\n[sandbox]\n'
            'mode = "none"\n'
        )
        paths = write_home(tmp_path / "tenants", tenant_config)
        refused = by_label(await run_doctor({}, paths=paths))["sandbox"]
        paths = write_home(
            tmp_path / "accepted", tenant_config + "allow_unsandboxed_tenants = true\n"
        )
        accepted = by_label(await run_doctor({}, paths=paths))["sandbox"]
    assert auto.data["mode"] == "auto"
    if auto.data["backend"] == "none":  # a machine with neither bwrap nor Landlock
        assert auto.status is Status.WARN and "bubblewrap" in (auto.fix or "")
    else:
        assert auto.status is Status.OK and auto.detail.startswith(auto.data["backend"])
    assert refused.status is Status.FAIL
    assert "will refuse to start" in refused.detail
    assert "allow_unsandboxed_tenants" in (refused.fix or "")
    assert accepted.status is Status.OK and "not confined" in accepted.detail


async def test_disk_row_warns_when_history_is_open_to_other_users(tmp_path: Path) -> None:
    async with open_fake_llm() as llm:
        paths = write_home(
            tmp_path / "home", f'default_provider = "fake"\n{provider("fake", llm.base_url)}\n'
        )
        paths.history_dir.mkdir(mode=0o700)
        (paths.history_dir / "a.json").write_text("{}")
        (paths.history_dir / "a.json").chmod(0o600)
        private = by_label(await run_doctor({}, paths=paths))["disk"]
        (paths.history_dir / "a.json").chmod(0o644)
        loose = by_label(await run_doctor({}, paths=paths))["disk"]
    assert private.status is Status.OK
    assert loose.status is Status.WARN
    assert f"{paths.history_dir / 'a.json'} (644)" in loose.detail
    assert loose.fix == f"chmod -R go-rwx {paths.history_dir}"
