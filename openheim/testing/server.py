"""A real HTTP server on 127.0.0.1 that answers model requests from a ``Script``.

It is a raw ASGI app (no framework) so it controls every byte, every flush and the moment a
connection dies; hypercorn's trio worker serves it. Tests get real sockets, real HTTP/1.1
chunking and real failures, which an ``httpx.MockTransport`` could not show.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import hypercorn.trio
import trio
from hypercorn.config import Config

from openheim.testing.anthropic_wire import AnthropicMessagesDialect
from openheim.testing.gemini_wire import GeminiGenerateContentDialect
from openheim.testing.openai_wire import OpenAIChatDialect
from openheim.testing.responses_wire import OpenAIResponsesDialect
from openheim.testing.script import HttpError, RecordedRequest, Reply, Response, Script
from openheim.testing.window import overflow_error, request_tokens, with_prompt_tokens
from openheim.testing.wire import (
    MALFORMED_BODY,
    MALFORMED_EVENT,
    Dialect,
    PlainResponse,
    StreamResponse,
)

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_REQUEST_BODY = 32 * 1024 * 1024
DEFAULT_DIALECTS: tuple[Dialect, ...] = (
    OpenAIChatDialect(),
    AnthropicMessagesDialect(),
    GeminiGenerateContentDialect(),
    OpenAIResponsesDialect(),
)


class FakeLLMApp:
    """The ASGI app: records each request, takes the next scripted response, renders it.

    Only model requests consume the script; a bad path, method or body gets an error without
    spending a response, so a test's script stays aligned with the calls it expects.
    """

    def __init__(
        self,
        script: Script,
        dialects: Sequence[Dialect] = DEFAULT_DIALECTS,
        *,
        context_window: int | None = None,
    ) -> None:
        if not dialects:
            raise ValueError("the fake LLM app needs at least one dialect")
        self.script = script
        #: When set, requests over this many tokens (``window.request_tokens``) are refused
        #: as the real APIs refuse them, and replies report that count as prompt tokens.
        self.context_window = context_window
        self.requests: list[RecordedRequest] = []
        self._arrivals = trio.lowlevel.ParkingLot()  # woken on every recorded request
        self._dialects = tuple(dialects)
        self._closing = trio.Event()
        self._replies = 0
        #: Requests being answered right now, and the most there ever were at once.
        self.in_flight = 0
        self.peak_in_flight = 0

    async def wait_for_requests(self, count: int) -> None:
        """Until ``count`` requests have arrived: a test acts mid-turn on that, not on a guess
        at how long the client takes to send them."""
        while len(self.requests) < count:
            await self._arrivals.park()

    def close(self) -> None:
        """Abort responses in flight (stalls included) so the server can stop at once."""
        self._closing.set()

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _serve_lifespan(receive, send)
        elif scope["type"] == "http":
            await self._serve_http(scope, receive, send)
        # Anything else (websocket) is not served: returning makes hypercorn refuse it.

    async def _serve_http(self, scope: Message, receive: Receive, send: Send) -> None:
        received_at = time.monotonic()
        raw, complete = await _read_body(receive)
        if raw is None:
            return  # the client left before sending its request
        body, parse_error = _parse_json(raw)
        request = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            headers=_header_dict(scope["headers"]),
            body=body,
            received_at=received_at,
            query=scope.get("query_string", b"").decode("latin-1"),
        )
        self.requests.append(request)
        self._arrivals.unpark_all()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            with trio.CancelScope() as abort:
                async with trio.open_nursery() as nursery:
                    wait_disconnect = partial(_wait_for_disconnect, receive)
                    nursery.start_soon(_cancel_after, wait_disconnect, abort)
                    nursery.start_soon(_cancel_after, self._closing.wait, abort)
                    await self._respond(request, send, complete=complete, parse_error=parse_error)
                    nursery.cancel_scope.cancel()
        finally:
            self.in_flight -= 1

    async def _respond(
        self, request: RecordedRequest, send: Send, *, complete: bool, parse_error: str | None
    ) -> None:
        dialect = next((d for d in self._dialects if d.matches(request.path)), None)
        if dialect is None:
            message = f"Invalid URL ({request.method} {request.path})"
            return await _send_plain(send, self._dialects[0].error(404, message))
        if request.method != "POST":
            message = f"Method {request.method} not allowed on {request.path}; use POST"
            return await _send_plain(send, dialect.error(405, message))
        if not complete:
            message = f"request body over {MAX_REQUEST_BODY} bytes"
            return await _send_plain(send, dialect.error(413, message))
        problem = parse_error or dialect.check(request)
        if problem is not None:
            return await _send_plain(send, dialect.error(400, problem))
        window = self.context_window
        tokens = None if window is None else request_tokens(request.body)
        if window is not None and tokens is not None and tokens > window:
            error = overflow_error(dialect, tokens, window)
            return await _send_plain(send, dialect.render_error(error))
        response = self.script.respond_to(request)
        if response is None:
            return await _send_plain(send, dialect.error(500, "fake LLM script exhausted"))
        if tokens is not None:
            response = with_prompt_tokens(response, tokens)
        if isinstance(response, HttpError):
            return await _send_plain(send, dialect.render_error(response))
        self._replies += 1
        rendered = dialect.render_reply(
            response, request, sequence=self._replies, created=int(time.time())
        )
        if isinstance(rendered, StreamResponse):
            await _send_stream(send, rendered, response)
        else:
            await _send_plain_reply(send, rendered, response)


async def _serve_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> tuple[bytes | None, bool]:
    """The request body and whether it is whole; ``None`` if the client disconnected."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        part = message.get("body", b"")
        size += len(part)
        if size > MAX_REQUEST_BODY:
            return b"", False
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts), True


def _parse_json(raw: bytes) -> tuple[Any, str | None]:
    if not raw:
        return None, "the request has no body; send a JSON object"
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return None, f"We could not parse the JSON body of your request ({exc})"


def _header_dict(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _cancel_after(wait: Callable[[], Awaitable[object]], scope: trio.CancelScope) -> None:
    await wait()
    scope.cancel()


def _start(status: int, headers: Iterable[tuple[str, str]]) -> Message:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
    }


def _body(data: bytes, *, more: bool) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def _send_plain(send: Send, response: PlainResponse) -> None:
    length = ("content-length", str(len(response.body)))
    await send(_start(response.status, (*response.headers, length)))
    await send(_body(response.body, more=False))


async def _send_stream(send: Send, response: StreamResponse, reply: Reply) -> None:
    """Send each event as its own flush, with the reply's delay and faults.

    Returning before the final body message is how an ASGI app drops a connection: hypercorn
    closes it without the terminating chunk, so the client sees a truncated body.
    """
    events = response.events

    def clamp(position: int | None) -> int | None:
        return None if position is None else min(position, len(events))

    drop, stall = clamp(reply.drop_after), clamp(reply.stall_after)
    malformed = clamp(reply.malformed_after)
    await send(_start(response.status, response.headers))
    for position in range(len(events) + 1):
        if position == malformed:
            await send(_body(MALFORMED_EVENT, more=True))
        if position == drop:
            return
        if position == stall:
            await trio.sleep_forever()
        if position == len(events):
            break
        if reply.chunk_delay:
            await trio.sleep(reply.chunk_delay)
        await send(_body(events[position], more=True))
    await send(_body(b"", more=False))


async def _send_plain_reply(send: Send, response: PlainResponse, reply: Reply) -> None:
    """A non-streamed answer; any drop or stall position hits it after the headers."""
    body = MALFORMED_BODY if reply.malformed_after is not None else response.body
    if reply.chunk_delay:
        await trio.sleep(reply.chunk_delay)
    length = ("content-length", str(len(body)))
    await send(_start(response.status, (*response.headers, length)))
    if reply.drop_after is not None:
        await send(_body(body[: len(body) // 2], more=True))
        return
    if reply.stall_after is not None:
        await trio.sleep_forever()
    await send(_body(body, more=False))


@attrs.frozen
class FakeLLMServer:
    """A running fake server: where it listens, what it was asked, what it will answer."""

    url: str
    app: FakeLLMApp
    _shutdown: trio.Event = attrs.field(alias="shutdown_event")

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in ``/v1``."""
        return f"{self.url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.app.requests

    @property
    def script(self) -> Script:
        return self.app.script

    async def wait_for_requests(self, count: int) -> None:
        """Until ``count`` requests have arrived (see ``FakeLLMApp.wait_for_requests``)."""
        await self.app.wait_for_requests(count)

    def shutdown(self) -> None:
        """Stop serving: abort responses in flight, then let hypercorn close gracefully."""
        self.app.close()
        self._shutdown.set()


def hypercorn_config(host: str, port: int) -> Config:
    """Hypercorn settings for a quiet local test server."""
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    # An unregistered logger has no handlers: warnings go to logging.lastResort (the current
    # stderr), info ("Running on ...") is dropped, and no global logger is reconfigured.
    config.errorlog = logging.Logger("openheim.testing.fake_llm", logging.WARNING)
    config.graceful_timeout = 1.0
    return config


async def serve_fake_llm(
    script: Script | Iterable[Response] = (),
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    dialects: Sequence[Dialect] = DEFAULT_DIALECTS,
    context_window: int | None = None,
    task_status: trio.TaskStatus[FakeLLMServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``FakeLLMServer.shutdown()``; use with ``nursery.start`` to get the server.

    ``port=0`` picks a free port; the started value knows the real one.
    """
    app = FakeLLMApp(
        script if isinstance(script, Script) else Script(script),
        dialects,
        context_window=context_window,
    )
    shutdown = trio.Event()
    config = hypercorn_config(host, port)
    async with trio.open_nursery() as nursery:
        serve = partial(hypercorn.trio.serve, app, config, shutdown_trigger=shutdown.wait)
        urls: list[str] = await nursery.start(partial(serve, mode="asgi"))
        task_status.started(FakeLLMServer(urls[0], app, shutdown_event=shutdown))


@asynccontextmanager
async def open_fake_llm(
    script: Script | Iterable[Response] = (),
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    dialects: Sequence[Dialect] = DEFAULT_DIALECTS,
    context_window: int | None = None,
) -> AsyncIterator[FakeLLMServer]:
    """Run a fake LLM server for the body of the ``async with``; shut it down on exit.

    An exception from the body leaves unchanged, not wrapped in the nursery's exception group,
    so ``pytest.raises`` around the block sees the real error.
    """
    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        start = partial(
            serve_fake_llm,
            script,
            host=host,
            port=port,
            dialects=dialects,
            context_window=context_window,
        )
        server: FakeLLMServer = await nursery.start(start)
        try:
            yield server
        except BaseException as exc:
            body_error = exc
        finally:
            server.shutdown()
    if body_error is not None:
        raise body_error
