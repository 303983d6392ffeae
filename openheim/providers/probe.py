"""Is a provider there, and does it take our key? One ``GET {api_base}/models``, no tokens.

Every kind serves a model listing at that path (OpenAI, Anthropic, Gemini, Ollama, vLLM),
and a server without one (404/405) still proves the address answers. The auth headers are
those of the provider's own dialect and the client comes from ``build_http_client``, so the
probe authenticates and connects exactly as a real request would. ``probe_request`` and
``classify`` are sans-IO; ``probe_provider`` is the one function that does I/O.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping

import attrs
import httpx
import trio

from openheim.config.model import ProviderConfig
from openheim.foundation.redact import strip_url_credentials
from openheim.providers.base import ChatRequest, Dialect, HttpRequest
from openheim.providers.client import build_http_client, make_dialect, read_limited

#: Bytes of a response read: enough for an error message or a model listing's count.
BODY_LIMIT = 16 * 1024
#: The request's own headers that describe a chat request, not who is asking.
_CHAT_ONLY_HEADERS = frozenset({"content-type", "accept"})


class Verdict(enum.StrEnum):
    """What the answer says about the provider; the caller decides how much each matters."""

    LISTED = "listed"  # 2xx: reachable, and the key (if any) accepted
    NO_LISTING = "no_listing"  # 404/405: reachable, this server lists no models
    REFUSED = "refused"  # 401/403, or a 400 that names the key: the key is wrong or absent
    REDIRECTED = "redirected"  # 3xx: requests do not follow redirects (they carry the key)
    RATE_LIMITED = "rate_limited"  # 429
    FAILING = "failing"  # 5xx: the provider has trouble
    UNEXPECTED = "unexpected"  # any other status
    UNREACHABLE = "unreachable"  # no HTTP answer: DNS, refused, TLS, reset
    TIMED_OUT = "timed_out"  # no answer within the limit


@attrs.frozen
class ProbeResult:
    """``url`` has any credentials stripped, so the result may be shown as it is.

    ``message`` is the provider's error message (or the transport's reason); ``models`` the
    count a listing gave, when it gave one.
    """

    verdict: Verdict
    url: str
    status: int | None = None
    latency: float | None = None
    message: str = ""
    models: int | None = None
    location: str | None = None

    @property
    def answered(self) -> bool:
        return self.status is not None


def probe_request(provider: ProviderConfig, dialect: Dialect, key: str | None) -> HttpRequest:
    """The listing request, with the auth headers the dialect puts on a chat request."""
    sample = dialect.build_request(ChatRequest(model=provider.default_model, messages=()), key)
    headers = {
        name: value
        for name, value in sample.headers.items()
        if name.lower() not in _CHAT_ONLY_HEADERS
    }
    headers |= {"accept": "application/json"}
    return HttpRequest("GET", f"{provider.api_base}/models", headers, None)


def classify(
    dialect: Dialect, url: str, status: int, headers: Mapping[str, str], body: bytes
) -> ProbeResult:
    """The verdict on one answer; the message is parsed by the dialect, as errors are."""
    if 200 <= status < 300:
        return ProbeResult(Verdict.LISTED, url, status, models=count_models(body))
    if 300 <= status < 400:
        location = strip_url_credentials(headers.get("location", "?"))
        return ProbeResult(Verdict.REDIRECTED, url, status, location=location)
    message = dialect.parse_error(status, headers, body).message
    # Gemini answers a bad key with 400 INVALID_ARGUMENT "API key not valid".
    if status in (401, 403) or (status == 400 and "api key" in message.lower()):
        verdict = Verdict.REFUSED
    elif status in (404, 405):
        verdict = Verdict.NO_LISTING
    elif status == 429:
        verdict = Verdict.RATE_LIMITED
    elif status >= 500:
        verdict = Verdict.FAILING
    else:
        verdict = Verdict.UNEXPECTED
    return ProbeResult(verdict, url, status, message=message)


def count_models(body: bytes) -> int | None:
    """``data`` (OpenAI, Anthropic, Ollama, vLLM) or ``models`` (Gemini); else unknown."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    for field in ("data", "models"):
        listed = payload.get(field)
        if isinstance(listed, list):
            return len(listed)
    return None


async def probe_provider(provider: ProviderConfig, key: str | None, *, limit: float) -> ProbeResult:
    """Ask once, waiting at most ``limit`` seconds; never raises for a network failure."""
    dialect = make_dialect(provider)
    request = probe_request(provider, dialect, key)
    shown = strip_url_credentials(request.url)
    http = build_http_client(provider)  # made before the clock starts: TLS setup is slow
    try:
        async with http:
            with trio.fail_after(limit):
                started = trio.current_time()
                async with http.stream(
                    request.method, request.url, headers=dict(request.headers)
                ) as response:
                    latency = trio.current_time() - started
                    body = await read_limited(response, BODY_LIMIT)
    except trio.TooSlowError:
        return ProbeResult(Verdict.TIMED_OUT, shown, message=f"no answer within {limit:g} s")
    except httpx.TransportError as exc:
        return ProbeResult(Verdict.UNREACHABLE, shown, message=str(exc) or type(exc).__name__)
    result = classify(dialect, shown, response.status_code, response.headers, body)
    return attrs.evolve(result, latency=latency)
