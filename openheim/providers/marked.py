"""Plumbing shared by provider decoders whose streams end with a marker event."""

from __future__ import annotations

import abc
from typing import ClassVar

from openheim.foundation.errors import ProviderError
from openheim.providers.base import ProviderEvent, StreamEnd
from openheim.providers.sse import SSEDecoder, SSEEvent, SSEEventTooLarge


class MarkedStreamDecoder(abc.ABC):
    """OpenAI ends with ``[DONE]``, Anthropic with ``message_stop``: feed SSE events to the
    format's handler until the marker, ignore anything after it, and at EOF accept a stream
    that said why it stopped and lost only the marker (some servers just close)."""

    #: Named in the error for a stream cut off before it said why it stopped.
    END_MARKER: ClassVar[str]

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._ended = False  # StreamEnd emitted: by the marker, or by close()

    def feed(self, data: bytes) -> list[ProviderEvent]:
        if self._ended:
            return []
        events: list[ProviderEvent] = []
        try:
            completed = self._sse.feed(data)
        except SSEEventTooLarge as exc:
            raise self._error(f"the stream sent {exc}; not buffered further") from None
        for sse in completed:
            self._handle_event(sse, events)
            if self._ended:
                break
        return events

    def close(self) -> list[ProviderEvent]:
        if self._ended:
            return []
        self._sse.close()
        if not self._stopped():
            raise self._error(f"stream ended unexpectedly before {self.END_MARKER}")
        return [self._end()]

    @abc.abstractmethod
    def _handle_event(self, sse: SSEEvent, events: list[ProviderEvent]) -> None: ...

    @abc.abstractmethod
    def _stopped(self) -> bool:
        """Whether the stream has said why it stopped (a finish or stop reason)."""

    @abc.abstractmethod
    def _end(self) -> StreamEnd:
        """The one ``StreamEnd``; must set ``self._ended``."""

    @abc.abstractmethod
    def _error(self, message: str, *, retryable: bool = False) -> ProviderError: ...
