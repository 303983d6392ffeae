"""``openheim acp``: ACP over stdin/stdout, one JSON-RPC message per line.

stdout carries protocol lines only. At start the process keeps private copies of fds 0 and 1
for the protocol and points fd 0 at /dev/null and fd 1 at stderr, so a stray ``print``, a log
handler or any child process (shells, MCP servers) can neither write into the protocol stream
nor read the client's messages. One writer task owns the output, fed by a bounded channel:
a client that stops reading slows the agent down instead of growing a queue.

End of input (the client closed stdin), SIGTERM and SIGINT all end the same way: running turns
are cancelled and saved, prompts answer ``cancelled`` if they can, and the process exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import sys
from collections.abc import Iterator, Mapping
from typing import Protocol

import trio

from openheim.acp.codec import DEFAULT_MAX_LINE_BYTES, LineDecoder, Message, encode
from openheim.acp.dispatcher import AcpDispatcher, open_dispatcher
from openheim.acp.outbox import Outbox, merge_chunks
from openheim.acp.settings import AcpSettings
from openheim.session import SessionRegistry

log = logging.getLogger(__name__)

OUTBOUND_BUFFER = 64
_READ_SIZE = 64 * 1024
#: After the dispatcher is done, how long the writer may take to flush what is queued.
_FLUSH_GRACE = 2.0


class _ByteStream(Protocol):
    async def receive_some(self, max_bytes: int | None = None) -> bytes: ...

    async def send_all(self, data: bytes) -> None: ...

    async def aclose(self) -> None: ...


class _ThreadedFd:
    """Blocking reads and writes in worker threads, for terminals and files.

    ``trio.lowlevel.FdStream`` would make the fd non-blocking, and a terminal's fds usually
    share one open file: stderr would turn non-blocking too and logging could fail. Regular
    files cannot be polled at all.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await trio.to_thread.run_sync(
            os.read, self.fd, max_bytes or _READ_SIZE, abandon_on_cancel=True
        )

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = await trio.to_thread.run_sync(os.write, self.fd, view)
            view = view[written:]

    async def aclose(self) -> None:
        os.close(self.fd)


def _open_fd(fd: int) -> _ByteStream:
    """A trio stream owning ``fd`` (closed with it; FdStream restores the blocking flag).

    Pipes and sockets (what ACP clients use) are polled; terminals and regular files, which
    cannot be polled or share their flags, use threads.
    """
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return trio.lowlevel.FdStream(fd)
    return _ThreadedFd(fd)


@contextlib.contextmanager
def claim_stdio() -> Iterator[tuple[int, int]]:
    """Private copies of stdin and stdout for the protocol; fds 0 and 1 are pointed away."""
    sys.stdout.flush()
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
        os.dup2(2, 1)
        yield protocol_in, protocol_out
    finally:
        sys.stdout.flush()
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        for fd in (saved_in, saved_out, devnull):
            os.close(fd)


async def serve_stdio(
    registry: SessionRegistry,
    input_fd: int,
    output_fd: int,
    *,
    settings: AcpSettings | None = None,
    handle_signals: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> None:
    """Serve one ACP client on these fds (which are closed at the end) until input ends."""
    reader, writer = _open_fd(input_fd), _open_fd(output_fd)
    outbox: Outbox[Message] = Outbox(OUTBOUND_BUFFER, merge_chunks)
    reading = trio.CancelScope()

    async def send(message: Message) -> None:
        with contextlib.suppress(trio.ClosedResourceError):  # stdout failed: nobody reads
            await outbox.put(message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_lines, writer, outbox, reading)
        async with trio.open_nursery() as serving:
            if handle_signals:
                serving.start_soon(_stop_on_signals, reading)
            async with open_dispatcher(registry, send, settings) as dispatcher:
                with reading:
                    await _read_lines(reader, LineDecoder(max_line_bytes), dispatcher)
            serving.cancel_scope.cancel()
        outbox.close()  # the writer sends what is queued, then ends
        nursery.cancel_scope.deadline = trio.current_time() + _FLUSH_GRACE
    with trio.CancelScope(shield=True):
        await reader.aclose()


async def _read_lines(reader: _ByteStream, decoder: LineDecoder, dispatcher: AcpDispatcher) -> None:
    while True:
        try:
            data = await reader.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, OSError) as exc:
            log.warning("stdin failed: %s", exc)
            data = b""
        messages = decoder.feed(data) if data else decoder.close()
        for message in messages:
            await dispatcher.receive(message)
        if not data:
            log.info("stdin closed: shutting down")
            return


async def _write_lines(
    writer: _ByteStream, outbox: Outbox[Message], reading: trio.CancelScope
) -> None:
    """The only writer of protocol output: all that is queued goes out in one write."""
    try:
        while True:
            try:
                messages = await outbox.take()
            except trio.EndOfChannel:
                break
            try:
                await writer.send_all(b"".join(encode(message) for message in messages))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.warning("stdout failed (%s): shutting down", exc)
                reading.cancel()
                break
    finally:
        outbox.close()  # no sender waits on a client that is gone
        with trio.CancelScope(shield=True):
            await writer.aclose()


async def _stop_on_signals(reading: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("%s: shutting down", signal.Signals(signum).name)
            reading.cancel()


async def run_acp_stdio(env: Mapping[str, str], *, log_format: str | None = None) -> int:
    """The ``openheim acp`` command; a config error raises before stdio is touched."""
    from openheim.config.load import load_config
    from openheim.config.paths import Paths
    from openheim.config.secrets import config_secrets
    from openheim.logs import configure_logging
    from openheim.session import open_runtime

    configure_logging(env, fmt=log_format)
    paths = Paths.from_env(env)
    config = load_config(paths.config_file)
    configure_logging(env, fmt=log_format, secrets=config_secrets(config, env))
    settings = AcpSettings.from_env(env)
    async with (
        open_runtime(config, paths, env=env) as runtime,
        SessionRegistry.open(runtime) as registry,
    ):
        with claim_stdio() as (protocol_in, protocol_out):
            await serve_stdio(
                registry, protocol_in, protocol_out, settings=settings, handle_signals=True
            )
    return 0
