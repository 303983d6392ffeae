"""Bad inputs give one clear line on stderr and exit 1, never a traceback."""

from __future__ import annotations

import pytest

from openheim.testing import HttpError, Reply
from tests.e2e.conftest import API_KEY, Home


def single_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("openheim: error: ")
    return lines[0]


async def check(home: Home, *args: str, env: dict[str, str] | None = None) -> str:
    result = await home.run(*args, env=env)
    assert result.returncode == 1, result
    assert home.llm.requests == []
    return single_error(result.stderr)


async def test_missing_config(home: Home) -> None:
    (home.path / "config.toml").unlink()
    line = await check(home, "run", "hi")
    assert f"Config file not found at {home.path / 'config.toml'}" in line
    assert "openheim init" in line


async def test_toml_syntax_error(home: Home) -> None:
    (home.path / "config.toml").write_text('default_provider = "fake"\n[providers.fake\n')
    line = await check(home, "run", "hi")
    assert str(home.path / "config.toml") in line and "invalid TOML" in line and "line 2" in line


async def test_unknown_model(home: Home) -> None:
    line = await check(home, "run", "--model", "gpt-17", "hi")
    assert "model 'gpt-17' is not listed by any provider" in line
    assert "fake/fake-model" in line


async def test_unknown_provider_prefix(home: Home) -> None:
    line = await check(home, "run", "--model", "nobody/some-model", "hi")
    assert "model 'nobody/some-model' is not listed" in line


async def test_missing_api_key(home: Home) -> None:
    env = home.env()
    env.pop("FAKE_LLM_KEY")
    line = await check(home, "run", "hi", env=env)
    assert "`providers.fake.env_var` names FAKE_LLM_KEY, which is not set" in line
    assert "export FAKE_LLM_KEY=" in line
    assert "`make demo`" in line


async def test_unknown_default_provider(home: Home) -> None:
    config = home.path / "config.toml"
    config.write_text(
        config.read_text().replace('default_provider = "fake"', 'default_provider = "x"')
    )
    line = await check(home, "run", "hi")
    assert "`default_provider` names 'x', which is not a configured provider" in line


async def test_misspelt_key(home: Home) -> None:
    home.write_config(top="max_iteration = 3")
    line = await check(home, "run", "hi")
    assert "`max_iteration` is not a known setting; fix: did you mean `max_iterations`?" in line


async def test_unknown_skill_lists_installed(home: Home) -> None:
    (home.path / "skills").mkdir()
    (home.path / "skills" / "rust.md").write_text("cargo")
    line = await check(home, "run", "--skills", "rust,go", "hi")
    assert "unknown skill 'go'" in line and "rust" in line


@pytest.mark.parametrize("conversation_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000"])
async def test_bad_resume_id(home: Home, conversation_id: str) -> None:
    line = await check(home, "run", "--resume", conversation_id, "hi")
    assert conversation_id in line


async def test_continue_without_history(home: Home) -> None:
    line = await check(home, "run", "--continue", "hi")
    assert "no conversation to continue" in line


async def test_resume_and_continue_together(home: Home) -> None:
    line = await check(home, "run", "--continue", "--resume", "x", "hi")
    assert "--resume and --continue cannot be used together" in line


async def test_a_huge_retry_after_fails_the_run_at_once(home: Home) -> None:
    home.llm.script.append(HttpError(429, retry_after=999999))
    result = await home.run("run", "hi")  # the home's retry_max_delay_secs is 5
    assert result.returncode == 1, result
    line = single_error(result.stderr)
    assert "fake provider error: HTTP 429: asked to wait 999999 s" in line
    assert "retry_max_delay_secs = 5" in line
    assert len(home.llm.requests) == 1


async def test_a_provider_error_echoing_the_key_never_shows_it(home: Home) -> None:
    echo = f"Incorrect API key provided: {API_KEY}. You can find your API key at ..."
    home.llm.script.append(HttpError(401, body={"error": {"message": echo}}))
    result = await home.run("run", "hi")
    assert result.returncode == 1, result
    line = single_error(result.stderr)
    assert API_KEY not in result.stderr + result.stdout
    assert "HTTP 401: Incorrect API key provided: <redacted>. You can find" in line


async def test_an_oversized_reply_fails_the_turn_and_the_session_goes_on(home: Home) -> None:
    home.write_config(extra_provider="max_reply_bytes = 4096")
    home.llm.script.extend([Reply.text("x" * 50_000, pieces=50), Reply.text("fine")])
    result = await home.run("run", "hi")
    assert result.returncode == 1, result
    line = single_error(result.stderr)
    assert "the reply was cut: more than max_reply_bytes = 4096" in line
    [history] = home.history_files()
    assert history.stat().st_size < 4096  # the cut reply is not stored
    resumed = await home.run("run", "--continue", "again")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "fine\n"
