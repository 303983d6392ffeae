"""The library facade, and the runnable example in docs/library.md."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from openheim import OpenheimClient
from openheim.agent.events import (
    MessageChunk,
    StopReason,
    ThoughtChunk,
    ToolCallStarted,
    TurnFinished,
)
from openheim.foundation.errors import ProviderError
from openheim.session import ConversationMeta
from openheim.testing import FakeLLMServer, HttpError, Reply, open_fake_llm

DOCS = Path(__file__).parents[1] / "docs" / "library.md"


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    async with open_fake_llm() as server:
        yield server


def make_home(tmp_path: Path, llm: FakeLLMServer) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'default_provider = "fake"\n[providers.fake]\napi_base = "{llm.base_url}"\n'
        'default_model = "m"\nmax_retries = 0\n'
    )
    return home


async def test_docs_example_runs(llm: FakeLLMServer, tmp_path: Path) -> None:
    text = DOCS.read_text()
    code = text[text.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```\n")]
    example = tmp_path / "example.py"
    example.write_text(code)
    llm.script.extend(
        [
            Reply.tool_call("word_count", {"text": "the quick brown fox"}),
            Reply.text("There are 4 words."),
            Reply.text("Four words."),
        ]
    )
    env = {"PATH": "/usr/bin:/bin", "OPENHEIM_HOME": str(make_home(tmp_path, llm))}
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, str(example)],
            env=env,
            cwd=tmp_path,
            capture_stdout=True,
            capture_stderr=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    stdout = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "answer: There are 4 words." in stdout
    assert "Four words." in stdout
    assert "[end_turn; 10 in / 5 out]" in stdout
    assert "saved as " in stdout
    assert llm.requests[1].body["messages"][-1]["content"] == "4"


async def test_prompt_stream_cancel_and_errors(llm: FakeLLMServer, tmp_path: Path) -> None:
    llm.script.extend(
        [
            Reply.text("Hello."),
            Reply.tool_call("execute_command", {"command": "sleep 30"}),
            HttpError(400, body="no such model"),
            Reply.text("still here"),
        ]
    )
    async with OpenheimClient.open(home=make_home(tmp_path, llm), env={}) as client:
        assert client.models() == {"fake": ["m"]}
        assert "execute_command" in [t.name for t in client.tools()]
        session = await client.new_session(cwd=tmp_path, allow_all_tools=True)
        assert await session.prompt("hi") == "Hello."

        seen = []
        with trio.fail_after(5):
            async with session.stream("sleep please") as events:
                async for event in events:
                    seen.append(event)
                    if isinstance(event, ToolCallStarted):
                        session.cancel()
        assert isinstance(seen[-1], TurnFinished)
        assert seen[-1].stop_reason is StopReason.CANCELLED

        with pytest.raises(ProviderError, match="no such model"):
            async with session.stream("fail") as events:
                async for _ in events:
                    pass
        async with session.stream("again") as events:
            texts = [e.text async for e in events if isinstance(e, MessageChunk)]
        assert "".join(texts) == "still here"

        listed = await client.list_sessions()
        assert [meta.id for meta in listed] == [session.id]
        again = await client.load_session(session.id)
        assert again.id == session.id
        with pytest.raises(ValueError, match="already registered"):

            class Clash:
                definition = client.tools()[0]

                async def call(self, arguments: dict, context: object) -> None: ...

            client.register_tool(Clash())  # type: ignore[arg-type]


async def test_stream_yields_thoughts_apart_and_reasoning_is_set_per_session(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    llm.script.extend([Reply.text("Four.", thinking="Two and two."), Reply.text("Yes.")])
    async with OpenheimClient.open(home=make_home(tmp_path, llm), env={}) as client:
        session = await client.new_session(cwd=tmp_path)
        assert session.reasoning == "off"
        session.set_reasoning("medium")
        assert session.reasoning == "medium"
        async with session.stream("2+2?") as events:
            seen = [event async for event in events]
        thoughts = "".join(e.text for e in seen if isinstance(e, ThoughtChunk))
        answer = "".join(e.text for e in seen if isinstance(e, MessageChunk))
        assert (thoughts, answer) == ("Two and two.", "Four.")
        session.set_reasoning(None)
        assert await session.prompt("sure?") == "Yes."
    assert [r.body.get("reasoning_effort") for r in llm.requests] == ["medium", None]


async def test_list_sessions_reads_history_newest_first(llm: FakeLLMServer, tmp_path: Path) -> None:
    llm.script.extend([Reply.text("one"), Reply.text("two")])
    home = make_home(tmp_path, llm)
    async with OpenheimClient.open(home=home, env={}) as client:
        for text in ("first", "second"):
            await (await client.new_session(cwd=tmp_path)).prompt(text)
    # Another client (another process, say) lists what the first one saved.
    async with OpenheimClient.open(home=home, env={}) as client:
        listed = await client.list_sessions()
        assert [meta.title for meta in listed] == ["second", "first"]
        assert all(isinstance(meta, ConversationMeta) for meta in listed)
        assert [meta.cwd for meta in listed] == [str(tmp_path)] * 2
        assert (listed[0].provider, listed[0].model) == ("fake", "m")
        assert [meta.id for meta in await client.list_sessions(limit=1)] == [listed[0].id]


def test_the_top_level_names_are_the_library_types_and_load_lazily() -> None:
    import importlib

    import openheim

    for name, module in openheim._PUBLIC.items():
        assert getattr(openheim, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError):
        openheim.NoSuchThing  # noqa: B018
    # `import openheim` alone loads none of the runtime (the CLI's --help stays fast).
    code = "import sys, openheim; print(any(m.startswith('openheim.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
