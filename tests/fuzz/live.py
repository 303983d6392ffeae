"""Random and mutated frames for the live transports, and what the spec says each deserves.

``FrameMaker`` builds frames from valid ACP requests and fs requests, then breaks them: fields
dropped, wrong types, huge numbers, deep nesting, lone surrogates, unknown methods, channels
and actions, escaping paths, text cut or spliced. ``ws_expectation`` and
``line_expectation`` apply the rules of OPENHEIM_SPEC.md (sections 3, 5.4, 5.6, 6) and
JSON-RPC 2.0 to the frame *as sent*, so a mutation that happens to leave a valid message is
still judged correctly. ``Expect.check`` then judges the reply.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import attrs

from openheim.server.fs.paths import OUTSIDE_MESSAGE

KNOWN_METHODS = frozenset(
    {
        "initialize",
        "authenticate",
        "session/new",
        "session/load",
        "session/list",
        "session/close",
        "session/prompt",
        "session/set_config_option",
        "session/set_model",
    }
)
FS_ACTIONS = ("watch", "unwatch", "list", "read", "write", "mkdir", "delete", "rename")
FS_FIELDS = {
    "watch": ("path",),
    "unwatch": (),
    "list": ("path",),
    "read": ("path",),
    "write": ("path", "content"),
    "mkdir": ("path",),
    "delete": ("path",),
    "rename": ("from", "to"),
}
FS_SUCCESS = {
    "watch": "watching",
    "unwatch": "unwatched",
    "list": "file_list",
    "read": "file_content",
    "write": "write_success",
    "mkdir": "mkdir_success",
    "delete": "delete_success",
    "rename": "rename_success",
}
#: Paths inside the workspace the frames may touch (never ``keep/``, which holds the sentinel).
SAFE_PATHS = (
    "",
    ".",
    "sub",
    "sub/file.txt",
    "sub/..",
    "new.txt",
    "dir/new",
    "dir",
    "ü/😀.txt",
    "~",
    "%2e%2e",
    "link_in",
    "link_in/file.txt",
    "a\\b",
    "...",
    " ",
    "x" * 300,  # longer than a file name may be
    "\udcff",  # a surrogate-escaped byte: a valid non-UTF-8 file name
)


def valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or type(value) is int


def same(a: Any, b: Any) -> bool:
    """Equal with the same JSON type (an id 1 is not 1.0 nor true)."""
    return type(a) is type(b) and a == b


def strict_json(text: str | bytes) -> Any:
    """Parse a frame we received: standard JSON only (no NaN or Infinity)."""

    def reject(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=reject)


def loads(text: str | bytes) -> tuple[bool, Any]:
    """What the server's JSON parser makes of a frame: (parsed?, value)."""
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


# --- expectations ------------------------------------------------------------------------------


@attrs.frozen
class Expect:
    """The one reply a frame must get.

    ``kind``: ``rpc`` (a JSON-RPC error with ``code``, or any reply when ``code`` is None),
    ``frame`` (a frame error on fs), ``invalid`` (an fs ``Invalid payload``), ``outside``
    (the refused-path error) or ``fs`` (an fs success for ``action``, or an operation error).
    """

    kind: str
    id: Any = None
    code: int | None = None
    action: str | None = None

    @property
    def channel(self) -> str:
        return "agent" if self.kind == "rpc" else "fs"

    def check(self, data: Any) -> None:
        if self.kind == "rpc":
            check_rpc_reply(data)
            assert same(data["id"], self.id), (self, data)
            if self.code is not None:
                assert "error" in data and data["error"]["code"] == self.code, (self, data)
            return
        assert isinstance(data, dict) and isinstance(data.get("type"), str), data
        if self.id is None:
            assert "id" not in data, (self, data)
        else:
            assert same(data.get("id"), self.id), (self, data)
        message = data.get("message")
        if self.kind == "frame":
            assert data["type"] == "error" and set(data) == {"type", "message"}, data
            assert message.startswith("Invalid payload: "), data
        elif self.kind == "invalid":
            assert data["type"] == "error" and message.startswith("Invalid payload: "), data
        elif self.kind == "outside":
            assert data["type"] == "error" and message == OUTSIDE_MESSAGE, data
        elif data["type"] == "error":
            assert isinstance(message, str) and message, data
            assert not message.startswith(("Invalid payload", "Internal error")), (self, data)
        else:
            assert self.action is not None and data["type"] == FS_SUCCESS[self.action], data


def outcome(data: Any) -> str:
    """A short name for a reply, to count what the frames reached."""
    if isinstance(data, dict) and "jsonrpc" in data:
        if "error" in data:
            return f"rpc error {data['error']['code']}"
        result = data["result"]
        return f"rpc result {sorted(result)[:1]}" if isinstance(result, dict) else "rpc result"
    message = str(data.get("message", ""))
    if data.get("type") == "error":
        return "fs error: " + message.split(":")[0][:60]
    return f"fs {data.get('type')}"


def check_rpc_reply(data: Any) -> None:
    """A JSON-RPC 2.0 response; an error never reports a crashed handler."""
    assert isinstance(data, dict) and data.get("jsonrpc") == "2.0", data
    assert set(data) <= {"jsonrpc", "id", "result", "error"} and "id" in data, data
    assert valid_id(data["id"]), data
    assert ("result" in data) != ("error" in data), data
    if "error" in data:
        error = data["error"]
        assert type(error.get("code")) is int and isinstance(error.get("message"), str), data
        assert not error["message"].startswith("Internal error"), data


def agent_expectation(value: Any) -> Expect | None:
    """JSON-RPC 2.0 and OPENHEIM_SPEC.md 5.4: who is answered, with which id and code."""
    if not isinstance(value, dict):
        return Expect("rpc", None, -32600)
    raw_id = value.get("id")
    usable = raw_id if valid_id(raw_id) else None
    if value.get("jsonrpc") != "2.0":
        if "method" in value or not ("result" in value or "error" in value):
            return Expect("rpc", usable, -32600)
        return None  # never answer something that looks like a response
    if "method" in value:
        method = value["method"]
        if not isinstance(method, str):
            return Expect("rpc", usable, -32600)
        if "id" in value and not valid_id(raw_id):
            return Expect("rpc", None, -32600)
        params = value.get("params")
        if params is not None and not isinstance(params, dict | list):
            return Expect("rpc", usable, -32600) if "id" in value else None
        if "id" not in value:
            return None  # a notification
        if method not in KNOWN_METHODS:
            return Expect("rpc", raw_id, -32601)
        if isinstance(params, list):
            return Expect("rpc", raw_id, -32602)
        return Expect("rpc", raw_id)
    if "result" in value or "error" in value:
        return None
    return Expect("rpc", usable, -32600)


def fs_expectation(data: Any, escapes: frozenset[str]) -> Expect:
    """OPENHEIM_SPEC.md section 6: ids echoed when valid, shape errors, refused paths."""
    if not isinstance(data, dict):
        return Expect("invalid")
    request_id = data.get("id")
    if request_id is not None and (
        isinstance(request_id, bool)
        or not isinstance(request_id, str | int | float)
        or request_id != request_id  # NaN
        or request_id in (float("inf"), float("-inf"))
    ):
        return Expect("invalid")  # not a JSON number: not echoed
    action = data.get("action")
    if not isinstance(action, str) or action not in FS_ACTIONS:
        return Expect("invalid", request_id)
    recursive = data.get("recursive")
    if action == "list" and recursive is not None and not isinstance(recursive, bool):
        return Expect("invalid", request_id)
    fields = [data.get(name) for name in FS_FIELDS[action]]
    if not all(isinstance(value, str) for value in fields):
        return Expect("invalid", request_id)
    paths = [data[name] for name in FS_FIELDS[action] if name != "content"]
    if any(path in escapes for path in paths):
        return Expect("outside", request_id)
    return Expect("fs", request_id, action=action)


def ws_expectation(frame: str, escapes: frozenset[str]) -> Expect | None:
    """What one ``/ws`` text frame deserves (OPENHEIM_SPEC.md section 3)."""
    parsed, value = loads(frame)
    if not parsed or not isinstance(value, dict) or "data" not in value:
        return Expect("frame")
    if value.get("channel") == "agent":
        return agent_expectation(value["data"])
    if value.get("channel") == "fs":
        return fs_expectation(value["data"], escapes)
    return Expect("frame")


def line_expectation(line: bytes) -> Expect | None:
    """What one stdio line deserves: blank lines are skipped, bad JSON is -32700 with null."""
    line = line.rstrip(b"\r")
    if not line.strip():
        return None
    parsed, value = loads(line)
    if not parsed:
        return Expect("rpc", None, -32700)
    return agent_expectation(value)


# --- frames ------------------------------------------------------------------------------------


@attrs.define
class Context:
    """What valid frames refer to; ``session_id`` is refreshed at every checkpoint."""

    workdir: str
    outside: str
    config_file: str
    session_id: str = ""

    @property
    def escapes(self) -> frozenset[str]:
        """Paths the fs channel must refuse whatever the fuzzing did to the workspace."""
        return frozenset(
            {
                "..",
                "../x",
                "/",
                "/etc/passwd",
                self.outside,
                f"{self.outside}/secret.txt",
                self.config_file,
                f"{self.workdir}/..",
                "link_out",
                "link_out/secret.txt",
                "link_out/new",
                "sub/../../x",
                "missing/../../x",
                "a\0b",
                "\0",
                "..\\x",
                "x\\..\\..",
                "\ud800",
            }
        )


def regression_messages(context: Context) -> list[dict[str, Any]]:
    """ACP messages that once crashed or broke a transport (sent first, every run)."""
    text = [{"type": "text", "text": "\ud800"}]
    return [
        # "Method not found: \ud800" could not be encoded: the writer (and so the
        # connection, or the whole ``openheim acp`` process) died.
        {"jsonrpc": "2.0", "id": 1, "method": "\ud800"},
        {"jsonrpc": "2.0", "id": "\udcff", "method": "fuzz/unknown"},
        # A lone surrogate in a prompt failed the turn when sent to the model and saved.
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "session/prompt",
            "params": {"sessionId": context.session_id, "prompt": text},
        },
    ]


def regression_ws_frames(context: Context) -> list[str]:
    """``/ws`` frames that once crashed the connection or got a malformed reply."""
    agent = [json.dumps({"channel": "agent", "data": m}) for m in regression_messages(context)]
    return [
        *agent,
        '{"channel": "fs", "data": 1' + "0" * 5_000 + "}",  # int() refused it: reader died
        '{"channel": "fs", "data": {"action": "list", "path": "", "id": NaN}}',  # echoed NaN
        '{"channel": "fs", "data": {"action": "list", "path": "", "id": 1e400}}',  # Infinity
        json.dumps({"channel": "fs", "data": {"action": "list", "path": "x" * 300, "id": 3}}),
        json.dumps({"channel": "fs", "data": {"action": "read", "path": "\ud800", "id": 4}}),
        # watchfiles cannot take a non-UTF-8 name: "Internal error" instead of a watch error
        json.dumps({"channel": "fs", "data": {"action": "mkdir", "path": "\udcff", "id": 5}}),
        json.dumps({"channel": "fs", "data": {"action": "watch", "path": "\udcff", "id": 6}}),
    ]


def regression_lines(context: Context) -> list[bytes]:
    """``openheim acp`` lines that once crashed the process."""
    lines = [json.dumps(m).encode() for m in regression_messages(context)]
    return [*lines, b"1" + b"0" * 5_000, b'{"jsonrpc": "2.0", "id": 1' + b"0" * 5_000 + b"}"]


_SAFE_CHARS = 'ab{}[]":,0123456789-.eE \\/ntruefalsnul\t\rü😀\x00\x7f'


class FrameMaker:
    """Random frames from one seed; every call to a ``*_frame`` method makes one."""

    def __init__(self, seed: int, context: Context) -> None:
        self.rng = random.Random(seed)
        self.context = context
        self._next_id = 1_000_000

    def next_id(self) -> int:
        """A fresh request id (the frames and the checkpoints share the sequence)."""
        self._next_id += 1
        return self._next_id

    # --- values ----------------------------------------------------------------------------

    def hostile(self, depth: int = 0) -> Any:
        rng = self.rng
        pick = rng.randrange(14 if depth < 2 else 10)
        if pick == 0:
            return rng.choice([None, True, False])
        if pick == 1:
            return rng.choice([0, -1, 1, 2**31, 2**63, 10**30, -(10**30), 10**300])
        if pick == 2:
            return rng.choice([0.5, -0.0, 1e308, -1e-308, 3.0])
        if pick == 3:
            return rng.choice(["", "x", "ü😀", "\0", "\ud800", "\udcff", "\u2028", "null"])
        if pick == 4:
            return "".join(rng.choice("abc/.\\~%") for _ in range(rng.randrange(1, 12)))
        if pick == 5:
            return "y" * rng.choice([100, 5_000, 70_000])
        if pick == 6:
            return rng.choice([*sorted(KNOWN_METHODS), "fuzz/unknown", "session/", "$/x"])
        if pick == 7:
            return uuid.UUID(int=rng.getrandbits(128)).hex
        if pick == 8:
            nested: Any = rng.choice([[], {}, "deep"])
            for _ in range(rng.randrange(1, 90)):  # deep, but well below any recursion limit
                nested = [nested] if rng.random() < 0.5 else {"k": nested}
            return nested
        if pick == 9:
            return rng.choice([[], {}])
        if pick in (10, 11):
            return [self.hostile(depth + 1) for _ in range(rng.randrange(1, 4))]
        # keys from "xyz" only: never a real field name (so never, e.g., an MCP "command")
        return {
            "".join(rng.choice("xyz") for _ in range(rng.randrange(1, 4))): self.hostile(depth + 1)
            for _ in range(rng.randrange(1, 4))
        }

    def mutate(self, value: dict[str, Any], fields: tuple[str, ...]) -> Any:
        """Drop, retype or add members, or replace the whole value."""
        rng = self.rng
        value = dict(value)
        for _ in range(rng.randrange(1, 4)):
            pick = rng.randrange(10)
            if pick == 0 and value:
                del value[rng.choice(sorted(value))]
            elif pick <= 4:
                value[rng.choice(fields)] = self.hostile()
            elif pick == 5 and isinstance(value.get("params"), dict) and value["params"]:
                params = dict(value["params"])
                key = rng.choice(sorted(params))
                if rng.random() < 0.5:
                    del params[key]
                else:
                    params[key] = self.hostile()
                value["params"] = params
            elif pick == 6:
                value[rng.choice(["extra", "_meta", "xyz"])] = self.hostile()
            elif pick == 7:
                return self.hostile()
            elif pick == 8:
                value["jsonrpc"] = rng.choice(["1.0", 2.0, None, "2.0 "])
            else:
                value["id"] = self.hostile()
        return value

    def text_mutation(self, text: str) -> str:
        """Break the serialized frame: cut, splice, huge numbers, deep nesting, non-JSON."""
        rng = self.rng
        pick = rng.randrange(7)
        if pick == 0:
            return text[: rng.randrange(len(text) + 1)]
        if pick == 1:
            at = rng.randrange(len(text) + 1)
            junk = "".join(rng.choice(_SAFE_CHARS) for _ in range(rng.randrange(1, 6)))
            return text[:at] + junk + text[at + rng.randrange(3) :]
        if pick == 2:  # more digits than Python's int() takes
            return text.replace("1000", "1" + "0" * 5_000, 1) if "1000" in text else text + "0"
        if pick == 3:  # not a float any more: inf (JSON has no such number)
            return text.replace("1000", "1e400", 1) if "1000" in text else "1e400"
        if pick == 4:  # deeper than the parser recurses
            return '{"channel": "agent", "data": ' + "[" * 5_000 + "]" * 5_000 + "}"
        if pick == 5:
            return rng.choice(["NaN", '{"channel": "fs", "data": {"action": "list", "id": NaN}}'])
        return text.replace('"', "'", 1)

    # --- messages --------------------------------------------------------------------------

    def agent_message(self) -> Any:
        rng = self.rng
        ctx = self.context
        sid = ctx.session_id
        work = ctx.workdir
        prompt = [{"type": "text", "text": rng.choice(["hi", "ü😀", "\ud800", "x" * 2_000])}]
        calls: list[tuple[str, Any]] = [
            ("initialize", {"protocolVersion": 1, "clientCapabilities": {}}),
            ("initialize", {"protocolVersion": 1, "clientCapabilities": {"fs": {"x": True}}}),
            ("authenticate", {"methodId": "none"}),
            ("session/new", {"cwd": work, "mcpServers": []}),
            ("session/new", {"cwd": f"{work}/sub", "_meta": {"model": "other-model"}}),
            ("session/new", {"cwd": ctx.outside, "mcpServers": []}),
            ("session/new", {"cwd": work, "mcpServers": [{"name": "x"}]}),
            ("session/load", {"sessionId": str(uuid.uuid4()), "cwd": work, "mcpServers": []}),
            ("session/list", {}),
            ("session/list", {"cwd": work}),
            ("session/prompt", {"sessionId": sid, "prompt": prompt}),
            ("session/prompt", {"sessionId": str(uuid.uuid4()), "prompt": prompt}),
            ("session/set_model", {"sessionId": sid, "modelId": "other-model"}),
            ("session/set_config_option", {"sessionId": sid, "configId": "model", "value": 1}),
            ("session/close", {"sessionId": str(uuid.uuid4())}),
            ("fuzz/unknown", {"x": 1}),
            ("", None),
        ]
        pick = rng.randrange(100)
        message: dict[str, Any]
        if pick < 75:
            method, params = rng.choice(calls)
            message = {"jsonrpc": "2.0", "id": self.next_id(), "method": method}
            if params is not None:
                message["params"] = params
        elif pick < 88:
            method, params = rng.choice(
                [
                    ("session/cancel", {"sessionId": sid}),
                    ("session/cancel", {"sessionId": "nope"}),
                    ("$/cancel_request", {"requestId": 5}),
                    ("fuzz/notify", {}),
                ]
            )
            message = {"jsonrpc": "2.0", "method": method, "params": params}
        elif pick < 94:
            message = {"jsonrpc": "2.0", "id": rng.choice([1, 7, "x", None]), "result": {}}
        else:
            message = {
                "jsonrpc": "2.0",
                "id": self.next_id(),
                "error": {"code": -32000, "message": "no"},
            }
        if rng.random() < 0.6:
            return self.mutate(message, ("jsonrpc", "id", "method", "params", "result", "error"))
        return message

    def fs_request(self) -> Any:
        rng = self.rng
        paths = (*SAFE_PATHS, *sorted(self.context.escapes))

        def path() -> str:
            return rng.choice(paths)

        action = rng.choice(FS_ACTIONS)
        request: dict[str, Any] = {"action": action, "id": self.next_id()}
        for name in FS_FIELDS[action]:
            request[name] = path()
        if action == "write":
            request["content"] = rng.choice(["", "hello\n", "ü😀" * 50, "\ud800", "\0 nul"])
        if action == "list":
            request["recursive"] = rng.choice([True, False, None])
        if rng.random() < 0.25:
            del request["id"]
        if rng.random() < 0.4:
            fields = ("action", "id", "path", "content", "from", "to", "recursive")
            return self.mutate(request, fields)
        return request

    # --- frames ----------------------------------------------------------------------------

    def ws_frame(self) -> str | bytes:
        """One ``/ws`` frame: text (an envelope, broken or not) or binary (ignored)."""
        rng = self.rng
        pick = rng.randrange(100)
        if pick < 4:
            return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64)))
        if pick < 44:
            envelope: Any = {"channel": "agent", "data": self.agent_message()}
        elif pick < 82:
            envelope = {"channel": "fs", "data": self.fs_request()}
        elif pick < 92:
            envelope = self.mutate(
                {"channel": rng.choice(["agent", "fs"]), "data": {}}, ("channel", "data")
            )
        else:
            envelope = self.hostile()
        text = json.dumps(envelope)
        if rng.random() < 0.08:
            text = self.text_mutation(text)
        return text

    def line(self) -> bytes:
        """One ``openheim acp`` stdin line, without its newline."""
        rng = self.rng
        pick = rng.randrange(100)
        if pick < 5:
            raw = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
            return raw.replace(b"\n", b"")
        if pick < 8:
            return rng.choice([b"", b"   ", b"\r", b"\t\x0b\x0c", b"\xef\xbb\xbf{}"])
        text = json.dumps(self.agent_message())
        if rng.random() < 0.1:
            text = self.text_mutation(text)
        data = text.encode()
        if rng.random() < 0.04:  # not UTF-8: a stray byte, a cut sequence, a raw surrogate
            at = rng.randrange(len(data) + 1)
            data = data[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80"]) + data[at:]
        if rng.random() < 0.1:
            data += b"\r"
        return data
