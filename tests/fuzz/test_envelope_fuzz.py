"""``/ws`` envelope router fuzz: every text frame routes to ``agent``/``fs`` or gets one of the
frame errors OPENHEIM_SPEC.md section 3 lists; what we send always parses back.

The live test (``test_live_frames``) covers the same frames through a real socket; this one
explores many more of them without one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from openheim.server.envelope import Envelope, FrameError, envelope_text, parse_envelope
from tests.fuzz.profiles import FUZZ, no_hang
from tests.fuzz.strategies import any_text, hostile_values, json_values, mutated_json

#: The messages after ``Invalid payload: `` that the spec lists, as patterns.
SPEC_FRAME_ERRORS = re.compile(
    r".+ at line \d+ column \d+"
    r"|nested too deeply"
    r"|number too large"
    r"|expected a JSON object, got (an array|a string|null|a [a-z]+)"
    r"|missing field `channel`"
    r"|unknown channel .*, expected `agent` or `fs`"
    r"|missing field `data`",
    re.DOTALL,
)

_envelopes = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.sampled_from(["agent", "fs"]) | hostile_values,
        "data": hostile_values,
        "extra": json_values,
    },
)


@st.composite
def frames(draw: st.DrawFn) -> str:
    """Text frames: envelopes (mutated or not), any JSON, broken JSON, hostile numbers."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return json.dumps(draw(_envelopes))
    if kind == 1:
        valid = {"channel": draw(st.sampled_from(["agent", "fs"])), "data": draw(json_values)}
        return json.dumps(draw(mutated_json(valid, ("channel", "data"), hostile_values)))
    if kind == 2:
        return json.dumps(draw(hostile_values))
    if kind == 3:
        text = json.dumps(draw(_envelopes))
        cut = draw(st.integers(0, len(text)))
        return text[:cut] + draw(st.text(max_size=4)) + text[cut + draw(st.integers(0, 3)) :]
    return draw(st.text(max_size=30))


def expected_route(text: str) -> Envelope | None:
    """The spec's routing rule, applied to what a JSON parser makes of the frame."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or value.get("channel") not in ("agent", "fs"):
        return None
    if "data" not in value:
        return None
    return Envelope(value["channel"], value["data"])


@FUZZ
@example(text='{"channel": "fs", "data": 1' + "0" * 5_000 + "}")
@example(text='{"channel": ' + "[" * 5_000)
@example(text='{"channel": ["agent"], "data": {}}')  # unhashable channel
@example(text='{"channel": "agent", "data": NaN}')
@given(text=frames())
def test_frames_route_or_get_a_spec_frame_error(text: str) -> None:
    with no_hang():
        routed = parse_envelope(text)
    want = expected_route(text)
    if want is not None:
        assert isinstance(routed, Envelope)
        assert routed.channel == want.channel
        assert json.dumps(routed.data) == json.dumps(want.data)  # NaN-safe equality
        return
    assert isinstance(routed, FrameError)
    assert SPEC_FRAME_ERRORS.fullmatch(routed.message), routed.message
    # The reply must itself be sendable: a valid UTF-8 envelope.
    reply = envelope_text("fs", {"type": "error", "message": f"Invalid payload: {routed.message}"})
    reply.encode("utf-8")


@FUZZ
@example(channel="fs", data={"type": "file_list", "path": "\ud800"})
@given(
    channel=st.sampled_from(["agent", "fs"]),
    data=hostile_values | st.dictionaries(any_text, any_text, max_size=3),
)
def test_what_we_send_routes_back_unchanged(channel: str, data: Any) -> None:
    """Our own frames are valid UTF-8 even when they echo a lone surrogate, and route back."""
    text = envelope_text(channel, data)
    text.encode("utf-8")
    assert parse_envelope(text) == Envelope(channel, data)
