"""``make demo``: the whole agent loop offline, with the fake LLM playing the model.

Starts the scripted fake server on 127.0.0.1, writes a throwaway OPENHEIM_HOME pointing at it,
and runs the real ``openheim run`` in a subprocess: a tool call, its output, a final answer,
and a saved conversation, with no API key and no network.
"""

from __future__ import annotations

import os
import sys
import tempfile

import trio

from openheim.testing import Reply, open_fake_llm

SCRIPT = [
    Reply.tool_call(
        "execute_command",
        {"command": "ls -la | head -20"},
        id="call_ls",
        text="Let me look around first.\n",
        chunk_delay=0.05,
    ),
    Reply.text(
        "I listed the current folder. This answer came from openheim's fake LLM server: the "
        "request, the tool call, its output and this streamed reply all went through the real "
        "agent loop, and the conversation is saved in the demo's history.",
        pieces=12,
        chunk_delay=0.05,
    ),
]

CONFIG = """\
default_provider = "demo"
[providers.demo]
api_base = "{base_url}"
default_model = "fake-model"
"""


async def main() -> int:
    async with open_fake_llm(SCRIPT) as llm:
        with tempfile.TemporaryDirectory(prefix="openheim-demo-") as home:
            await trio.Path(home, "config.toml").write_text(CONFIG.format(base_url=llm.base_url))
            env = {**os.environ, "OPENHEIM_HOME": home}
            prompt = "List the files in the current directory."
            print(f'$ openheim run "{prompt}"   (OPENHEIM_HOME={home})', flush=True)
            done = await trio.run_process(
                [sys.executable, "-m", "openheim", "run", prompt], env=env, check=False
            )
            history = sorted(p.name for p in await trio.Path(home, "history").glob("*.json"))
            print(f"\nexit code {done.returncode}; saved: {history}")
            return done.returncode


if __name__ == "__main__":
    sys.exit(trio.run(main))
