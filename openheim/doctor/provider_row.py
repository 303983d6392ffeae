"""The doctor's provider rows: where the key comes from, and what the endpoint answers.

Only what the user actually uses can fail the report: the default provider. Another provider
without a key is skipped without touching the network (``openheim init`` lists several, and
a fresh config must not probe the internet for each), and its endpoint's problems are
warnings: it is unusable until fixed, the setup is not broken.
"""

from __future__ import annotations

from collections.abc import Mapping

from openheim.config.context_windows import context_window, window_source
from openheim.config.model import Config, ProviderConfig
from openheim.config.resolve import resolve_api_key
from openheim.doctor.rows import Row, Status, plural
from openheim.foundation.errors import ConfigError
from openheim.foundation.redact import strip_url_credentials
from openheim.providers.probe import ProbeResult, Verdict, probe_provider

#: Longest wait for a provider's ``GET /models`` (less if the provider's timeout is shorter).
PROBE_TIMEOUT_SECS = 10.0


def provider_order(config: Config) -> list[ProviderConfig]:
    """The default provider first, then the rest as written."""
    default = config.providers[config.default_provider]
    return [default, *(p for p in config.providers.values() if p is not default)]


async def check_provider(
    config: Config, provider: ProviderConfig, env: Mapping[str, str], probe_secs: float
) -> list[Row]:
    """Two rows, key and endpoint; one skip row for an unused provider without a key."""
    used = provider.name == config.default_provider
    key_row, key = provider_key_row(config, provider, env)
    missing = key_row.data.get("key_source") == "missing"
    if missing and not used:
        return [_skipped(provider, key_row)]
    limit = min(probe_secs, provider.timeout_secs)
    result = await probe_provider(provider, key, limit=limit)
    endpoint = endpoint_row(provider, result, key, key_missing=missing, used=used)
    return [key_row, endpoint, context_row(provider, config.server.compact_at)]


def context_row(provider: ProviderConfig, tenant_compact_at: float | None) -> Row:
    """The default model's window, where it comes from, and when compaction starts."""
    model = provider.default_model
    window = context_window(provider, model)
    source = window_source(provider, model)
    share = f"{provider.compact_at:.0%}"
    if tenant_compact_at is not None:
        share += f" ({tenant_compact_at:.0%} for serve's tenants)"
    others = len(provider.context_windows) - (model in provider.context_windows)
    extra = f"; {plural(others, 'other per-model window')}" if others > 0 else ""
    detail = f"{model}: window {window:,} tokens ({source}), compacts at {share}{extra}"
    data = {
        "model": model,
        "context_window": window,
        "window_source": source,
        "compact_at": provider.compact_at,
        "context_windows": dict(provider.context_windows),
    }
    fix = None
    if source == "fallback":
        fix = (
            f"if {model}'s window is larger, set `context_window` in [providers.{provider.name}]"
            " (compaction then starts later)"
        )
    return Row("provider", provider.name, Status.OK, detail, fix, "context", data)


def provider_key_row(
    config: Config, provider: ProviderConfig, env: Mapping[str, str]
) -> tuple[Row, str | None]:
    """Decided by ``resolve_api_key`` itself, so doctor and ``run`` never disagree."""
    name, var = provider.name, provider.env_var

    def row(status: Status, detail: str, fix: str | None = None, source: str = "") -> Row:
        return Row("provider", name, status, detail, fix, "key", {"key_source": source})

    try:
        key = resolve_api_key(config.path, provider, env)
    except ConfigError:
        if var:
            detail, fix = f"MISSING: ${var} is not set", f"export {var}=<your key>"
            return row(Status.FAIL, detail, fix, source="missing"), None
        fix = (
            f'add `env_var = "{name.upper()}_API_KEY"` to [providers.{name}] in {config.path} '
            "and export that variable"
        )
        return row(Status.FAIL, "MISSING: no `env_var` and no `api_key`", fix, "missing"), None
    if key is None:
        return row(Status.OK, f"not needed ({provider.kind.value} server)", source="none"), None
    if var and env.get(var, "").strip():
        return row(Status.OK, f"found in ${var}", source="env"), key
    unset = f" (${var} is not set)" if var else ""
    return row(Status.OK, f"inline `api_key` in the config{unset}", source="inline"), key


def _skipped(provider: ProviderConfig, key_row: Row) -> Row:
    why = f"${provider.env_var} unset" if provider.env_var else "no `env_var` and no `api_key`"
    detail = f"no key ({why}); not the default provider, not probed"
    return Row("provider", provider.name, Status.SKIP, detail, key_row.fix, data=key_row.data)


def endpoint_row(
    provider: ProviderConfig,
    result: ProbeResult,
    key: str | None,
    *,
    key_missing: bool,
    used: bool,
) -> Row:
    """The probe's verdict as a row; ``used`` decides whether a problem fails or warns."""
    name = provider.name
    broken = Status.FAIL if used else Status.WARN
    base = strip_url_credentials(provider.api_base)
    data: dict[str, object] = {"url": result.url}
    if result.answered:
        data["http_status"] = result.status
        data["latency_ms"] = round((result.latency or 0.0) * 1000)
    if result.models is not None:
        data["models_listed"] = result.models

    def row(status: Status, detail: str, fix: str | None = None) -> Row:
        return Row("provider", name, status, detail, fix, "endpoint", data)

    status_code, message = result.status, result.message
    answered = f"{base} answered in {data.get('latency_ms')} ms"
    unreachable_fix = (
        f"check `api_base` in [providers.{name}], your network or proxy, and that the server runs"
    )
    match result.verdict:
        case Verdict.TIMED_OUT:
            return row(broken, f"unreachable: {message}", unreachable_fix)
        case Verdict.UNREACHABLE:
            return row(broken, f"unreachable: {message} ({base})", unreachable_fix)
        case Verdict.LISTED:
            checked = "key not checked" if key is None else "key accepted"
            listed = (
                f", {plural(result.models, 'model')} listed" if result.models is not None else ""
            )
            return row(Status.OK, f"OK, {answered} ({checked}{listed})")
        case Verdict.REDIRECTED:
            return row(
                broken,
                f"redirected to {result.location} (HTTP {status_code}); "
                "requests do not follow redirects",
                f"set `api_base` in [providers.{name}] to the URL it redirects to",
            )
        case Verdict.REFUSED:
            if key_missing:  # the key row already carries the failure
                return row(Status.OK, f"reachable, {answered} (key not checked: none configured)")
            return row(broken, *_refused(provider, key, f"(HTTP {status_code}): {message}"))
        case Verdict.NO_LISTING:
            return row(Status.OK, f"reachable, {answered} (no model listing: HTTP {status_code})")
        case Verdict.RATE_LIMITED:
            return row(
                Status.WARN,
                f"reachable but rate-limited, {answered} (HTTP 429): {message}",
                "wait, or lower `requests_per_minute` / `max_in_flight` for this provider",
            )
        case Verdict.FAILING:
            return row(
                Status.WARN,
                f"reachable but failing, {answered} (HTTP {status_code}): {message}",
                "the provider has trouble; try again later or check its status page",
            )
    return row(
        broken,
        f"HTTP {status_code} from {base}/models: {message}",
        f"check `api_base` and the key of [providers.{name}]",
    )


def _refused(provider: ProviderConfig, key: str | None, answer: str) -> tuple[str, str]:
    """Detail and fix when the server refused what we sent (no key, or a wrong one)."""
    name = provider.name
    if key is None:
        fix = (
            f'this server wants a key: add `env_var = "{name.upper()}_API_KEY"` '
            f"to [providers.{name}] and export it"
        )
        return f"key required {answer}", fix
    where = f"${provider.env_var}" if provider.env_var else "`api_key`"
    base = strip_url_credentials(provider.api_base)
    return (
        f"key rejected {answer}",
        f"check the key in {where}: is it valid, and for this provider ({base})?",
    )
