"""The provider probe: its sans-IO request and verdicts, then real answers on 127.0.0.1 (the
fake LLM, a one-answer HTTP stub, a closed port and a listener that never answers)."""

from __future__ import annotations

import json
import socket

import pytest
import trio

from openheim.config.model import ProviderConfig, ProviderKind
from openheim.providers.client import make_dialect
from openheim.providers.probe import (
    ProbeResult,
    Verdict,
    classify,
    count_models,
    probe_provider,
    probe_request,
)
from openheim.testing import open_fake_llm

KEY = "sk-probe-secret-0123456789"


def config(kind: ProviderKind, api_base: str = "http://127.0.0.1:1/v1") -> ProviderConfig:
    return ProviderConfig(
        name=kind.value, kind=kind, api_base=api_base, default_model="m", models=("m",)
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("kind", "header", "value"),
    [
        (ProviderKind.OPENAI, "authorization", f"Bearer {KEY}"),
        (ProviderKind.OPENAI_COMPATIBLE, "authorization", f"Bearer {KEY}"),
        (ProviderKind.ANTHROPIC, "x-api-key", KEY),
        (ProviderKind.GEMINI, "x-goog-api-key", KEY),
    ],
)
def test_the_request_lists_models_with_the_dialects_auth(
    kind: ProviderKind, header: str, value: str
) -> None:
    provider = config(kind, "https://api.example.test/v1")
    request = probe_request(provider, make_dialect(provider), KEY)
    headers = {name.lower(): v for name, v in request.headers.items()}
    assert (request.method, request.url, request.json) == (
        "GET",
        "https://api.example.test/v1/models",
        None,
    )
    assert headers[header] == value
    assert "content-type" not in headers  # a GET carries no body
    assert headers["accept"] == "application/json"
    keyless = probe_request(provider, make_dialect(provider), None)
    assert header not in {name.lower() for name in keyless.headers}


def test_verdicts_for_each_kind_of_answer() -> None:
    gemini = make_dialect(config(ProviderKind.GEMINI))
    openai = make_dialect(config(ProviderKind.OPENAI))
    url = "https://h.test/v1/models"

    def verdict(status: int, body: object = b"", headers: dict[str, str] | None = None) -> Verdict:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return classify(openai, url, status, headers or {}, raw).verdict

    listed = classify(openai, url, 200, {}, b'{"data": [{"id": "a"}, {"id": "b"}]}')
    assert (listed.verdict, listed.models, listed.status) == (Verdict.LISTED, 2, 200)
    assert classify(openai, url, 200, {}, b"<html>").models is None
    assert verdict(401, {"error": {"message": "bad key"}}) is Verdict.REFUSED
    assert verdict(403) is Verdict.REFUSED
    assert verdict(404) is Verdict.NO_LISTING and verdict(405) is Verdict.NO_LISTING
    assert verdict(429) is Verdict.RATE_LIMITED
    assert verdict(503) is Verdict.FAILING and verdict(529) is Verdict.FAILING
    assert verdict(400, {"error": {"message": "model field missing"}}) is Verdict.UNEXPECTED
    assert verdict(418) is Verdict.UNEXPECTED
    # Gemini refuses a bad key with a 400; its dialect reads the message.
    bad_key = {
        "error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}
    }
    refused = classify(gemini, url, 400, {}, json.dumps(bad_key).encode())
    assert refused.verdict is Verdict.REFUSED
    assert refused.message.endswith("API key not valid.")
    moved = classify(openai, url, 301, {"location": "https://user:pw@new.test/v1/models"}, b"")
    assert moved.verdict is Verdict.REDIRECTED
    assert moved.location is not None and "pw" not in moved.location


def test_model_listings_of_each_shape_are_counted() -> None:
    assert count_models(b'{"data": []}') == 0
    assert count_models(b'{"models": [{"name": "models/gemini"}]}') == 1
    assert count_models(b'{"object": "list"}') is None
    assert count_models(b"[1, 2]") is None
    assert count_models(b"not json") is None


async def test_the_fake_llm_answers_reachable_without_a_listing() -> None:
    async with open_fake_llm() as llm:
        result = await probe_provider(config(ProviderKind.OPENAI, llm.base_url), KEY, limit=5)
        [request] = llm.requests
    assert (result.verdict, result.status) == (Verdict.NO_LISTING, 404)
    assert result.latency is not None and result.latency >= 0
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["authorization"] == f"Bearer {KEY}"


async def serve_once(
    nursery: trio.Nursery, status: str, body: bytes
) -> tuple[str, list[dict[str, str]]]:
    """An HTTP server that answers every request with ``status`` and ``body``."""
    seen: list[dict[str, str]] = []

    async def handle(stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            data += chunk
        lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
        seen.append({k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)})
        await stream.send_all(
            f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n".encode()
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await stream.aclose()

    listeners = await nursery.start(trio.serve_tcp, handle, 0)
    port = listeners[0].socket.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1", seen


async def test_a_listing_is_counted_and_a_long_body_read_only_in_part(
    nursery: trio.Nursery,
) -> None:
    models = [{"id": f"model-{n}", "pad": "x" * 100} for n in range(400)]  # ~50 KiB
    base, seen = await serve_once(nursery, "200 OK", json.dumps({"data": models[:3]}).encode())
    listed = await probe_provider(config(ProviderKind.ANTHROPIC, base), KEY, limit=5)
    assert (listed.verdict, listed.models) == (Verdict.LISTED, 3)
    assert seen[0]["x-api-key"] == KEY

    base, _ = await serve_once(nursery, "200 OK", json.dumps({"data": models}).encode())
    cut = await probe_provider(config(ProviderKind.OPENAI, base), KEY, limit=5)
    assert (cut.verdict, cut.models) == (Verdict.LISTED, None)  # past the read limit: unknown


async def test_no_server_and_a_silent_server() -> None:
    gone = await probe_provider(
        config(ProviderKind.OPENAI, f"http://127.0.0.1:{closed_port()}/v1"), None, limit=5
    )
    assert gone.verdict is Verdict.UNREACHABLE and gone.message
    assert not gone.answered
    with socket.socket() as silent:  # the kernel accepts connections; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = trio.current_time()
        stuck = await probe_provider(
            config(ProviderKind.OPENAI, f"http://127.0.0.1:{port}/v1"), None, limit=0.3
        )
    assert trio.current_time() - started < 3
    assert stuck == ProbeResult(
        Verdict.TIMED_OUT, f"http://127.0.0.1:{port}/v1/models", message="no answer within 0.3 s"
    )
