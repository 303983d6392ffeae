"""The provider actor: owns one ``httpx.AsyncClient`` and does the I/O around a dialect.

``ProviderClient.stream`` runs the request in a producer task inside the caller's scope, so
cancelling a turn closes the HTTP stream at once; events reach the caller over a bounded
channel, so a slow consumer slows the read instead of growing a buffer.
"""

from __future__ import annotations

import contextlib
import logging
import random
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import tenacity
import trio

from openheim.config.model import ProviderConfig, ProviderKind
from openheim.foundation.concurrency import Failed, ResultStream, open_service_nursery
from openheim.foundation.errors import ProviderError
from openheim.foundation.redact import mask_secrets
from openheim.observe import NULL_OBSERVER, Observer
from openheim.providers.base import (
    ChatRequest,
    Dialect,
    ProviderEvent,
    Retrying,
    StreamEnd,
    TextDelta,
    ThinkingDelta,
)
from openheim.providers.context_errors import classify
from openheim.providers.lean_reads import use_lean_reads
from openheim.providers.limiter import RateLimiter
from openheim.providers.tls import client_verify
from openheim.providers.vision import fit_to_model

log = logging.getLogger(__name__)

EVENT_BUFFER = 64
#: After the final event, how long the rest of the body may take to arrive before it is cut.
END_GRACE = 1.0
ERROR_BODY_LIMIT = 64 * 1024


class ProviderStream(ResultStream[ProviderEvent]):
    """The events of one request; iteration raises the request's ``ProviderError``, if any.

    Deltas of one kind that are already waiting come out as one: the producer hands on all
    the events of a network read without stopping, so a consumer slower than the stream (a
    backlog) takes fewer, larger steps, and one that keeps up gets every piece as it came.
    """

    def __init__(self, receive: trio.MemoryReceiveChannel[ProviderEvent | Failed]) -> None:
        super().__init__(receive)
        self._held: ProviderEvent | Failed | None = None
        #: The consumer has had the ``StreamEnd``.
        self.ended = False

    async def __anext__(self) -> ProviderEvent:
        if self._held is not None:
            item, self._held = self._held, None
            event = self.unwrap(item)
        else:
            event = await super().__anext__()
        if not isinstance(event, TextDelta | ThinkingDelta):
            self.ended = self.ended or isinstance(event, StreamEnd)
            return event
        texts = [event.text]
        while True:
            try:
                item = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if type(item) is not type(event):
                self._held = item
                break
            assert isinstance(item, TextDelta | ThinkingDelta)
            texts.append(item.text)
        return event if len(texts) == 1 else type(event)("".join(texts))


#: Idle connections kept open per provider for the next requests, and for how long.
KEEPALIVE_CONNECTIONS = 64
KEEPALIVE_SECS = 30.0


def make_dialect(config: ProviderConfig) -> Dialect:
    """The wire format for a provider's ``kind``; each module is imported only when used."""
    if config.kind is ProviderKind.ANTHROPIC:
        from openheim.providers.anthropic import AnthropicDialect

        return AnthropicDialect(config.api_base, provider_name=config.name)
    if config.kind is ProviderKind.GEMINI:
        from openheim.providers.gemini import GeminiDialect

        return GeminiDialect(config.api_base, provider_name=config.name)
    if config.kind is ProviderKind.OPENAI_RESPONSES:
        from openheim.providers.openai_responses import OpenAIResponsesDialect

        return OpenAIResponsesDialect(config.api_base, provider_name=config.name)
    from openheim.providers.openai import OpenAIDialect

    field = "max_completion_tokens" if config.kind is ProviderKind.OPENAI else "max_tokens"
    return OpenAIDialect(config.api_base, provider_name=config.name, max_tokens_field=field)


class ProviderClient:
    def __init__(
        self,
        config: ProviderConfig,
        dialect: Dialect,
        api_key: str | None,
        http: httpx.AsyncClient,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self.config = config
        self.dialect = dialect
        self.observer = observer
        self.limiter = RateLimiter(
            max_in_flight=config.max_in_flight, requests_per_minute=config.requests_per_minute
        )
        self._api_key = api_key
        self._http = http

    @asynccontextmanager
    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderStream]:
        request = fit_to_model(request, self.config)  # a text-only model gets notes, not images
        send, receive = trio.open_memory_channel[ProviderEvent | Failed](EVENT_BUFFER)
        produced = trio.Event()
        async with open_service_nursery() as nursery:
            nursery.start_soon(self._produce, request, send, produced)
            with receive:
                stream = ProviderStream(receive)
                yield stream
                if stream.ended:
                    # The body's last bytes (``[DONE]``, the chunked end) are read, not cut
                    # off: the connection goes back to the pool for the next request, and no
                    # cancel unwinds the HTTP stack (its traceback is garbage with cycles).
                    with trio.move_on_after(END_GRACE):
                        await produced.wait()

    async def _produce(
        self,
        request: ChatRequest,
        send: trio.MemorySendChannel[ProviderEvent | Failed],
        produced: trio.Event,
    ) -> None:
        try:
            await self._produce_into(request, send)
        finally:
            produced.set()

    async def _produce_into(
        self, request: ChatRequest, send: trio.MemorySendChannel[ProviderEvent | Failed]
    ) -> None:
        async with send:
            try:
                await self._stream_with_retry(request, send)
            except ProviderError as error:
                await _deliver(send, Failed(error))
            except trio.BrokenResourceError:
                pass  # the consumer has gone; nothing left to tell
            except Exception as exc:  # a bug must fail this request, not the process
                log.exception("unexpected error while streaming from %s", self.config.name)
                error = ProviderError(
                    f"unexpected {type(exc).__name__} while streaming: {exc}",
                    provider=self.config.name,
                )
                await _deliver(send, Failed(error))

    async def _stream_with_retry(
        self, request: ChatRequest, send: trio.MemorySendChannel[ProviderEvent | Failed]
    ) -> None:
        attempts = self.config.max_retries + 1

        async def announce(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            assert isinstance(error, ProviderError)
            delay = state.upcoming_sleep
            self.observer.provider_retry(self.config.name, request.model)
            await send.send(Retrying(state.attempt_number, attempts, delay, error))

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=self._delay,
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, ProviderError) and exc.retryable
            ),
            before_sleep=announce,
            sleep=trio.sleep,
            reraise=True,
        )
        traced = {"gen_ai.system": self.config.name, "gen_ai.request.model": request.model}
        async for attempt in retrying:
            with attempt, self.observer.span("openheim.provider_request", traced):
                await self._attempt(request, send)

    def _delay(self, state: tenacity.RetryCallState) -> float:
        """Exponential backoff with jitter, or the provider's ``Retry-After`` when it gave one."""
        error = state.outcome.exception() if state.outcome else None
        cap = self.config.retry_max_delay_secs
        if isinstance(error, ProviderError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), cap)
        ceiling = self.config.retry_initial_delay_secs * 2 ** (state.attempt_number - 1)
        return min(cap, random.uniform(ceiling / 2, ceiling))

    async def _attempt(
        self, request: ChatRequest, send: trio.MemorySendChannel[ProviderEvent | Failed]
    ) -> None:
        """One HTTP request, within the key's limits; its outcome and time go to the observer."""
        async with self.limiter.slot():
            started = trio.current_time()
            outcome = "error"
            ended: list[StreamEnd] = []
            try:
                await self._stream_once(request, send, ended)
                outcome = "ok"
            except trio.Cancelled:
                # The consumer may close the stream as soon as it has the end event.
                outcome = "ok" if ended else "cancelled"
                raise
            except ProviderError as error:
                outcome = f"http_{error.status}" if error.status else "network"
                if error.retry_after is not None:
                    self._honour_retry_after(error)
                raise
            finally:
                elapsed = trio.current_time() - started
                self.observer.provider_request(self.config.name, request.model, outcome, elapsed)

    def _honour_retry_after(self, error: ProviderError) -> None:
        """Pause the key for the wait asked, never past ``retry_max_delay_secs``: the pause
        holds every session on this key. A longer wait fails this request instead, so nothing
        hangs on a provider's (or a proxy's) word."""
        assert error.retry_after is not None
        cap = self.config.retry_max_delay_secs
        self.limiter.pause(min(error.retry_after, cap))
        if error.retry_after > cap:
            raise ProviderError(
                f"asked to wait {error.retry_after:g} s before retrying (Retry-After), more "
                f"than retry_max_delay_secs = {cap:g}; fix: try again later, or raise "
                f"[providers.{self.config.name}] retry_max_delay_secs",
                provider=self.config.name,
                status=error.status,
            ) from None

    async def _stream_once(
        self,
        request: ChatRequest,
        send: trio.MemorySendChannel[ProviderEvent | Failed],
        ended: list[StreamEnd],
    ) -> None:
        http_request = self.dialect.build_request(request, self._api_key)
        handed_on = False
        limit = self.config.max_reply_bytes
        received = 0
        try:
            with trio.move_on_after(self.config.max_reply_secs) as clock:
                async with self._http.stream(
                    http_request.method,
                    http_request.url,
                    headers=dict(http_request.headers),
                    json=http_request.json,
                ) as response:
                    if response.status_code >= 400:
                        body = await read_limited(response, ERROR_BODY_LIMIT)
                        error = self.dialect.parse_error(
                            response.status_code, response.headers, body
                        )
                        raise classify(error, body)
                    await _check_content_type(self.config.name, response)
                    decoder = self.dialect.new_decoder()
                    async with contextlib.aclosing(response.aiter_bytes()) as chunks:
                        async for chunk in chunks:
                            received += len(chunk)
                            if received > limit:
                                raise self._too_long(f"more than max_reply_bytes = {limit}")
                            for event in decoder.feed(chunk):
                                handed_on = True
                                await self._hand_on(event, send, ended)
                    for event in decoder.close():
                        handed_on = True
                        await self._hand_on(event, send, ended)
            if clock.cancelled_caught:
                seconds = f"{self.config.max_reply_secs:g}"
                raise self._too_long(f"still streaming after max_reply_secs = {seconds} s")
        except httpx.TransportError as exc:
            raise self._masked(self._transport_error(exc, handed_on)) from None
        except ProviderError as error:
            error = self._masked(error)
            if handed_on and error.retryable:
                raise _not_retryable(error) from None
            raise error from None

    def _too_long(self, what: str) -> ProviderError:
        """A reply past its bounds: final, since the same request would do it again."""
        return ProviderError(
            f"the reply was cut: {what}; fix: raise it in [providers.{self.config.name}] "
            "if such replies are expected",
            provider=self.config.name,
        )

    def _masked(self, error: ProviderError) -> ProviderError:
        """The error with our key (and anything key-shaped) masked: providers echo the key
        they were sent ("Incorrect API key provided: sk-..."), and the text goes to clients."""
        message = mask_secrets(error.message, [self._api_key] if self._api_key else [])
        if message == error.message:
            return error
        return type(error)(
            message,
            provider=error.provider,
            status=error.status,
            retryable=error.retryable,
            retry_after=error.retry_after,
        )

    async def _hand_on(
        self,
        event: ProviderEvent,
        send: trio.MemorySendChannel[ProviderEvent | Failed],
        ended: list[StreamEnd],
    ) -> None:
        if isinstance(event, StreamEnd):
            ended.append(event)
        try:  # no stop per event: the read that brought it was one (``ProviderStream``)
            send.send_nowait(event)
        except trio.WouldBlock:
            await send.send(event)

    def _transport_error(self, exc: httpx.TransportError, handed_on: bool) -> ProviderError:
        if isinstance(exc, httpx.ConnectTimeout):
            what = f"could not connect within {self.config.connect_timeout_secs:g} s"
        elif isinstance(exc, httpx.ReadTimeout):
            what = f"no data for {self.config.timeout_secs:g} s"
        elif isinstance(exc, httpx.TimeoutException):
            what = f"timed out ({type(exc).__name__})"
        else:
            detail = str(exc) or type(exc).__name__
            what = f"network error: {detail}"
        error = ProviderError(
            f"{what} ({self.config.api_base})", provider=self.config.name, retryable=True
        )
        return _not_retryable(error) if handed_on else error


def _not_retryable(error: ProviderError) -> ProviderError:
    """Output already reached the consumer: a retry would repeat it, so the error is final."""
    return ProviderError(
        f"{error.message} (the response broke off after output began)",
        provider=error.provider,
        status=error.status,
        retryable=False,
    )


async def _deliver(send: trio.MemorySendChannel[ProviderEvent | Failed], item: Failed) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await send.send(item)


async def read_limited(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a body, decoded (an error body may come gzipped), reading
    no further: a huge or endless body costs one network chunk past the limit."""
    body = bytearray()
    async with contextlib.aclosing(response.aiter_bytes()) as chunks:
        async for chunk in chunks:
            body += chunk
            if len(body) >= limit:
                break
    return bytes(body[:limit])


async def _check_content_type(provider: str, response: httpx.Response) -> None:
    """A 200 that is not an event stream (a proxy's HTML page, a non-streaming reply) is
    reported with the start of its body instead of as an empty stream."""
    content_type = response.headers.get("content-type", "")
    if content_type and "event-stream" not in content_type:
        head = (await read_limited(response, 300)).decode("utf-8", "replace")
        raise ProviderError(
            f"expected an event stream, got {content_type!r}: {' '.join(head.split())}",
            provider=provider,
            status=response.status_code,
        )


def build_http_client(config: ProviderConfig) -> httpx.AsyncClient:
    """One pooled client per provider. Redirects are not followed: they would carry the key.

    The pool is not what limits concurrency (``max_in_flight`` and the rate limiter are):
    httpx's default of 100 connections would queue the 101st concurrent turn for a free
    connection, and httpcore's queue costs CPU per waiting request.
    """
    timeout = httpx.Timeout(
        connect=config.connect_timeout_secs,
        read=config.timeout_secs,
        write=config.timeout_secs,
        pool=config.timeout_secs,
    )
    limits = httpx.Limits(
        max_connections=config.max_in_flight,  # None: as many as turns need
        max_keepalive_connections=KEEPALIVE_CONNECTIONS,
        keepalive_expiry=KEEPALIVE_SECS,
    )
    client = httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        follow_redirects=False,
        verify=client_verify(config.api_base, urllib.request.getproxies()),
    )
    use_lean_reads(client)
    return client


@asynccontextmanager
async def open_provider(
    config: ProviderConfig, api_key: str | None, observer: Observer = NULL_OBSERVER
) -> AsyncIterator[ProviderClient]:
    dialect = make_dialect(config)
    async with build_http_client(config) as http:
        yield ProviderClient(config, dialect, api_key, http, observer)
