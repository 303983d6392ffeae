"""An incremental Server-Sent Events decoder (sans-IO), following the WHATWG parsing rules.

Bytes arrive in arbitrary splits: a UTF-8 character, a ``\\r\\n`` pair or a line may straddle
two reads. The decoder keeps only the unfinished line and the event being built, so each
``feed`` costs time proportional to the new bytes, never to the whole stream.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import codecs

import attrs

from openheim.foundation.errors import OpenheimError

#: Default bound on one event (its unfinished line plus its data lines), in characters: far
#: above any real chunk, far below what would hurt the process.
DEFAULT_MAX_EVENT_CHARS = 8 * 1024 * 1024


class SSEEventTooLarge(OpenheimError, ValueError):
    """An event (or a line still waiting for its end) grew past the decoder's bound."""


@attrs.frozen
class SSEEvent:
    """One dispatched event.

    ``id`` is the stream's last event id when this event was dispatched (it persists across
    events, as the spec says); ``retry`` is a reconnection time given in this event's block.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns response body bytes into ``SSEEvent``s; feed it in any splits, then ``close()``.

    ``max_event_chars`` bounds what is held for one event: an endless ``data:`` line or an
    event of a million lines raises ``SSEEventTooLarge`` instead of growing memory.
    """

    def __init__(self, max_event_chars: int = DEFAULT_MAX_EVENT_CHARS) -> None:
        self._max = max_event_chars
        self._line_chars = 0  # in ``_line_parts``
        self._data_chars = 0  # in ``_data``
        # "utf-8-sig" drops one leading BOM, even when it is split across feeds.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._line_parts: list[str] = []  # the current, unterminated line
        self._skip_lf = False  # the last text ended in "\r": a following "\n" is the same EOL
        self._data: list[str] = []
        self._event_type = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._closed = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Decode ``data`` and return the events it completed (often none)."""
        if self._closed:
            raise RuntimeError("SSEDecoder.feed() called after close()")
        return self._feed_text(self._decoder.decode(data))

    def close(self) -> list[SSEEvent]:
        """The body ended. An event without its terminating blank line is dropped (per spec)."""
        if self._closed:
            return []
        self._closed = True
        # Flushing can only yield a replacement character for a truncated UTF-8 sequence,
        # which can never complete an event; decode it anyway so that state stays consistent.
        events = self._feed_text(self._decoder.decode(b"", final=True))
        self._line_parts.clear()
        self._data.clear()
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        if self._skip_lf and text[0] == "\n":
            text = text[1:]
            if not text:
                self._skip_lf = False
                return []
        # A trailing "\r" ends its line now; remember it so a "\n" in the next feed is skipped.
        self._skip_lf = text[-1] == "\r"
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._line_chars += len(text)
            self._check(self._line_chars)
            self._line_parts.append(text)
            return []
        lines = text.split("\n")
        if self._line_parts:
            self._line_parts.append(lines[0])
            lines[0] = "".join(self._line_parts)
            self._line_parts.clear()
        tail = lines.pop()
        if tail:
            self._line_parts.append(tail)
        self._line_chars = len(tail)
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif line[0] != ":":  # lines starting with ":" are comments (keep-alives)
                self._check(len(line))
                self._process_field(line)
        self._check(self._line_chars)
        return events

    def _check(self, chars: int) -> None:
        """``chars`` more would be held for the current event: refuse past the bound."""
        if chars + self._data_chars > self._max:
            raise SSEEventTooLarge(f"an event over {self._max} characters")

    def _process_field(self, line: str) -> None:
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._data_chars += len(value) + 1
        elif field == "event":
            self._event_type = value
        elif field == "id" and "\0" not in value:
            self._last_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        # Any other field name is ignored, as the spec requires.

    def _dispatch(self) -> SSEEvent | None:
        retry, self._retry = self._retry, None
        event_type, self._event_type = self._event_type, ""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data.clear()
        self._data_chars = 0
        return SSEEvent(data=data, event=event_type or "message", id=self._last_id, retry=retry)
