"""``openheim doctor`` on the config ``openheim init`` writes: no FAIL for providers the user
does not use, and no request leaves the machine.

Every proxy variable points at a closed port on 127.0.0.1 (loopback exempt), so a probe of a
template provider's internet address would fail here instead of going out; the rows then
show it was never made.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from openheim.config.paths import Paths
from openheim.config.template import write_default_config
from openheim.doctor import Status, render_table, run_doctor
from openheim.testing import FakeLLMServer, open_fake_llm
from tests.doctor.test_doctor import by_label, closed_port

KEY = "sk-fresh-init-secret-0123456789"
TEMPLATE_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Proxy variables that make any non-loopback request fail at once, in this process too."""
    dead = f"http://127.0.0.1:{closed_port()}"
    proxies = {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead}
    proxies["NO_PROXY"] = "127.0.0.1,localhost"
    for name in [*proxies, *(name.lower() for name in proxies), *TEMPLATE_KEYS]:
        monkeypatch.delenv(name, raising=False)
    for name, value in proxies.items():
        monkeypatch.setenv(name, value)
    return proxies


def set_api_base(config: Path, provider: str, url: str) -> None:
    """Point one template provider elsewhere, leaving the rest of the file as written."""
    text = config.read_text()
    pattern = rf'(\[providers\.{provider}\]\napi_base = )"[^"]*"'
    changed, count = re.subn(pattern, rf'\g<1>"{url}"', text)
    assert count == 1, provider
    config.write_text(changed)


def probes(llm: FakeLLMServer) -> list[tuple[str, str]]:
    return [(request.method, request.path) for request in llm.requests]


async def test_cli_on_a_fresh_init_config_exits_0(tmp_path: Path, offline: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENHEIM_HOME", *TEMPLATE_KEYS)}
    env |= offline | {"OPENHEIM_HOME": str(tmp_path / "home"), "OPENAI_API_KEY": KEY}

    async def openheim(*args: str) -> subprocess.CompletedProcess[bytes]:
        with trio.fail_after(60):
            return await trio.run_process(
                [sys.executable, "-m", "openheim", *args],
                cwd=tmp_path,
                env=env,
                capture_stdout=True,
                capture_stderr=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )

    assert (await openheim("init")).returncode == 0
    config = tmp_path / "home" / "config.toml"
    async with open_fake_llm() as llm:
        # The default provider is the one the user means to use: it answers on loopback.
        set_api_base(config, "openai", llm.base_url)
        set_api_base(config, "ollama", f"http://127.0.0.1:{closed_port()}/v1")
        done = await openheim("doctor", "--json")
        seen = probes(llm)
    shown = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, shown
    assert KEY not in shown
    payload = json.loads(done.stdout)
    statuses = {
        " ".join(p for p in (r["check"], r["subject"], r["aspect"]) if p): r["status"]
        for r in payload["rows"]
    }
    assert payload["ok"] is True
    assert "fail" not in statuses.values()
    assert statuses["provider openai key"] == "ok"
    assert statuses["provider openai endpoint"] == "ok"
    assert statuses["provider anthropic"] == "skip"
    assert statuses["provider gemini"] == "skip"
    assert statuses["provider ollama key"] == "ok"  # a local server needs no key
    assert statuses["provider ollama endpoint"] == "warn"  # not running, not the default
    assert seen == [("GET", "/v1/models")]


async def test_a_fresh_config_without_keys_fails_only_on_the_default_provider(
    tmp_path: Path, offline: dict[str, str]
) -> None:
    paths = Paths(tmp_path / "home")
    paths.home.mkdir()
    write_default_config(paths.config_file)
    async with open_fake_llm() as llm:
        set_api_base(paths.config_file, "openai", llm.base_url)
        report = await run_doctor({}, paths=paths)
        seen = probes(llm)
    rows = by_label(report)
    failures = [row.label for row in report.rows if row.status is Status.FAIL]
    assert failures == ["provider openai key"], render_table(report)
    assert rows["provider openai key"].fix == "export OPENAI_API_KEY=<your key>"
    anthropic = rows["provider anthropic"]
    assert (anthropic.status, anthropic.detail) == (
        Status.SKIP,
        "no key ($ANTHROPIC_API_KEY unset); not the default provider, not probed",
    )
    assert rows["provider gemini"].status is Status.SKIP
    # Ollama's template address is loopback: probed, and never a failure (none may run here).
    assert rows["provider ollama endpoint"].status in (Status.OK, Status.WARN)
    assert seen == [("GET", "/v1/models")]  # the keyless default is still probed
    summary = render_table(report).splitlines()[-1]
    assert summary.startswith("1 failed, ") and "2 skipped" in summary
