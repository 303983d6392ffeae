"""The fake LLM for the streaming benchmark: every text chunk carries the moment it was sent.

Run by ``throughput.py`` as ``python bench/stamped_llm.py --chunks 500 --chunk-delay 0.02``;
the first stdout line is ``listening <url>``, and on SIGTERM the last is ``stats {...}`` with the
most streams it served at once.

Each chunk's text is a 20-character placeholder; an ASGI wrapper around ``FakeLLMApp`` replaces
it with ``time.monotonic_ns()`` (zero-padded, 20 digits) in the very ``send`` that hands the
event to hypercorn. CLOCK_MONOTONIC is system-wide on Linux, so a client in another process
subtracts the stamp from its own ``time.monotonic_ns()`` to get the chunk's delivery latency.
No hook in ``openheim.testing`` is needed: the wrapper only rewrites outgoing body bytes.

The model name picks the pacing: ``paced`` replies sleep ``--chunk-delay`` before each chunk
(a model's token rate), any other model streams as fast as the server can write.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import hypercorn.trio
import trio

from openheim.testing import FakeLLMApp, RecordedRequest, Reply, Response, Script, TextChunk
from openheim.testing.server import hypercorn_config

PLACEHOLDER = b"@" * 20
#: A stamp as it appears in a JSON string or an SSE event.
STAMP = re.compile(rb'"(\d{20})"')
PACED_MODEL = "paced"

Message = dict[str, Any]


class PacedScript(Script):
    """Answers every request with the same ``chunks``-chunk reply, paced by the model name."""

    def __init__(self, chunks: int, delay: float) -> None:
        super().__init__([], repeat=True)
        pieces = tuple(TextChunk(PLACEHOLDER.decode()) for _ in range(chunks))
        self.fast = Reply(pieces)
        self.paced = Reply(pieces, chunk_delay=delay)

    def respond_to(self, request: RecordedRequest) -> Response | None:
        body = request.body if isinstance(request.body, dict) else {}
        self.consumed += 1
        return self.paced if body.get("model") == PACED_MODEL else self.fast


class StampingApp:
    """ASGI middleware: stamps the placeholder in each response body message as it is sent.

    A paced stream starts after a random part of one chunk interval: streams of real models
    are not in step, and N streams started together and paced by the same clock would all
    emit in the same instant, measuring the burst instead of the relay.
    """

    def __init__(self, app: FakeLLMApp, delay: float) -> None:
        self.app = app
        self.delay = delay
        self.rng = random.Random(1217)

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope.get("type") == "http" and self.delay > 0:
            await trio.sleep(self.rng.uniform(0, self.delay))

        async def stamped(message: Message) -> None:
            body = message.get("body")
            if message["type"] == "http.response.body" and body and PLACEHOLDER in body:
                stamp = b"%020d" % time.monotonic_ns()
                message = {**message, "body": body.replace(PLACEHOLDER, stamp)}
            await send(message)

        await self.app(scope, receive, stamped)


async def serve(host: str, port: int, chunks: int, delay: float) -> None:
    app = FakeLLMApp(PacedScript(chunks, delay))
    shutdown = trio.Event()
    config = hypercorn_config(host, port)
    config.backlog = 2048  # a thousand clients connect at once
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            run = partial(
                hypercorn.trio.serve,
                StampingApp(app, delay),
                config,
                shutdown_trigger=shutdown.wait,
            )
            urls: list[str] = await nursery.start(partial(run, mode="asgi"))
            print(f"listening {urls[0]}", flush=True)
            async for _ in signals:
                break
            stats = {"requests": len(app.requests), "peak_in_flight": app.peak_in_flight}
            print(f"stats {json.dumps(stats)}", flush=True)
            app.close()
            shutdown.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--chunk-delay", type=float, default=0.02)
    args = parser.parse_args()
    trio.run(serve, args.host, args.port, args.chunks, args.chunk_delay)


if __name__ == "__main__":
    main()
