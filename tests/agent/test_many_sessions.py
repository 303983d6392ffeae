"""Many agent runs sharing one provider key queue fairly behind its limiter."""

from __future__ import annotations

from pathlib import Path

import trio

from openheim.agent.events import AgentEvent, StopReason, TurnFinished
from openheim.agent.loop import Turn, TurnSettings
from openheim.config.model import ProviderConfig, ProviderKind
from openheim.foundation.models import Conversation
from openheim.providers.client import open_provider
from openheim.testing import HttpError, Reply, Script, open_fake_llm
from openheim.tools.base import ToolContext, ToolRegistry

RUNS = 200
LIMIT = 8
BURST = 6


async def test_200_runs_on_a_key_limited_to_8_in_flight_absorb_a_429_burst() -> None:
    replies = [Reply.text(f"answer {n}", pieces=3, chunk_delay=0.01) for n in range(RUNS)]
    script = Script([*[HttpError(429, retry_after=0.2)] * BURST, *replies])
    async with open_fake_llm(script) as llm:
        config = ProviderConfig(
            name="shared",
            kind=ProviderKind.OPENAI_COMPATIBLE,
            api_base=llm.base_url,
            default_model="m",
            models=("m",),
            max_in_flight=LIMIT,
            max_retries=4,
            retry_initial_delay_secs=0.05,
        )
        results: list[TurnFinished] = []
        async with open_provider(config, None) as provider:

            async def one_run(n: int) -> None:
                send, receive = trio.open_memory_channel[AgentEvent](100)
                turn = Turn(
                    Conversation(id=f"c{n}"),
                    f"question {n}",
                    provider=provider,
                    tools=ToolRegistry(),
                    context=ToolContext(cwd=Path("/")),
                    settings=TurnSettings(model="m"),
                    events=send,
                )
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_drain, receive)
                    async with send:
                        results.append(await turn.run())

            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    for n in range(RUNS):
                        nursery.start_soon(one_run, n)
            assert provider.limiter.peak_in_flight == LIMIT
        assert len(results) == RUNS
        assert all(r.stop_reason is StopReason.END_TURN for r in results)
        assert llm.app.peak_in_flight <= LIMIT
        assert len(llm.requests) == RUNS + BURST
        # The burst paused the whole key: after the first batch of 8, nothing was sent
        # during the Retry-After window.
        first_429 = llm.requests[0].received_at
        after_burst = [r.received_at for r in llm.requests[LIMIT:]]
        assert min(after_burst) - first_429 >= 0.15


async def _drain(receive: trio.MemoryReceiveChannel[AgentEvent]) -> None:
    async with receive:
        async for _ in receive:
            pass
