"""Logging for the long-running faces (``serve``, ``acp``): text or one JSON object per line.

JSON lines carry the context of the task that logged: ``tenant``, ``session_id``,
``connection_id`` and ``request_id``, kept in context variables (trio tasks inherit them from
the task that started them), so a line from deep inside a turn still says whose it was.
Known secrets (provider keys, tokens) are masked in every line, text or JSON.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

LOG_LEVEL_ENV = "OPENHEIM_LOG"
LOG_FORMAT_ENV = "OPENHEIM_LOG_FORMAT"
FORMATS = ("text", "json")
MASK = "<redacted>"
#: Secrets shorter than this are not masked: they would blank out ordinary words.
_MIN_SECRET = 8

_EMPTY: Mapping[str, str] = {}
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "openheim_log_context", default=_EMPTY
)


def bind_log_context(*, replace: bool = False, **fields: str | None) -> None:
    """Add fields to every line logged for the rest of this task and the tasks it starts
    from now on (a task's own identity, set once).

    trio tasks inherit the context of the task that *started* them, so an actor that outlives
    its starter (a session started by a connection) passes ``replace=True``.
    """
    base = {} if replace else _context.get()
    _context.set({**base, **{k: v for k, v in fields.items() if v is not None}})


class _Masking(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class TextFormatter(_Masking):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(secrets, "%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context.get()
        if context:
            line += " " + " ".join(f"{key}={value}" for key, value in sorted(context.items()))
        return self.mask(line)


class JsonFormatter(_Masking):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_context.get())
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self.mask(json.dumps(entry, ensure_ascii=False, default=str))


def configure_logging(
    env: Mapping[str, str], *, fmt: str | None = None, secrets: Iterable[str] = ()
) -> str:
    """Logs go to stderr at ``OPENHEIM_LOG`` (debug, info, warning, error; default warning),
    as ``fmt`` (or ``OPENHEIM_LOG_FORMAT``): ``text`` or ``json``. Returns the format."""
    name = env.get(LOG_LEVEL_ENV, "").strip().upper() or "WARNING"
    level = logging.getLevelNamesMapping().get(name, logging.WARNING)
    chosen = fmt or env.get(LOG_FORMAT_ENV, "").strip().lower() or "text"
    if chosen not in FORMATS:
        chosen = "text"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets) if chosen == "json" else TextFormatter(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return chosen


def announce(fmt: str, message: str, **fields: str) -> None:
    """A line for whoever started us (``serving on URL``), whatever the log level: plain text,
    or in JSON mode a log object like the others, so every stderr line stays JSON."""
    if fmt == "json":
        record = logging.LogRecord("openheim", logging.INFO, "", 0, message, None, None)
        line = json.loads(JsonFormatter(()).format(record))
        print(json.dumps(line | fields, ensure_ascii=False), file=sys.stderr, flush=True)
    else:
        print(message, file=sys.stderr, flush=True)
