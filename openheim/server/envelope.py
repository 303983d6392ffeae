"""The ``/ws`` envelope, pure: every text frame is ``{"channel": "agent"|"fs", "data": ...}``.

A frame that cannot be routed (bad JSON, not an object, no or unknown ``channel``, no ``data``)
parses to a ``FrameError`` whose message is sent back on ``fs``; the connection stays open.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from openheim.acp.codec import dumps_text

CHANNELS = ("agent", "fs")


@attrs.frozen
class Envelope:
    channel: str
    data: Any


@attrs.frozen
class FrameError:
    """Why a frame cannot be routed; sent back as ``frame_error(message)``."""

    message: str


def _kind(value: Any) -> str:
    return (
        "null"
        if value is None
        else {list: "an array", str: "a string"}.get(type(value), f"a {type(value).__name__}")
    )


def parse_envelope(text: str) -> Envelope | FrameError:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return FrameError(f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return FrameError("nested too deeply")
    except ValueError:  # an integer with more digits than int() takes (sys.int_info)
        return FrameError("number too large")
    if not isinstance(value, dict):
        return FrameError(f"expected a JSON object, got {_kind(value)}")
    if "channel" not in value:
        return FrameError("missing field `channel`")
    channel = value["channel"]
    if channel not in CHANNELS:
        return FrameError(f"unknown channel {json.dumps(channel)}, expected `agent` or `fs`")
    if "data" not in value:
        return FrameError("missing field `data`")
    return Envelope(channel, value["data"])


def envelope_text(channel: str, data: Any) -> str:
    return dumps_text({"channel": channel, "data": data})
