"""``[providers.NAME]``: one LLM endpoint, its models, key, limits and prices."""

from __future__ import annotations

import re

from openheim.config.model import ModelPrice, ProviderConfig, ProviderKind
from openheim.config.table import Table, config_error, settings_of
from openheim.foundation.models import ReasoningLevel

_URL_RE = re.compile(r"^https?://[^/\s]+")
_ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_API_BASES = {
    ProviderKind.OPENAI: "https://api.openai.com/v1",
    ProviderKind.ANTHROPIC: "https://api.anthropic.com/v1",
    ProviderKind.GEMINI: "https://generativelanguage.googleapis.com/v1beta",
    ProviderKind.OPENAI_COMPATIBLE: "http://localhost:11434/v1",
    ProviderKind.OPENAI_RESPONSES: "https://api.openai.com/v1",
}


def read_providers(root: Table) -> dict[str, ProviderConfig]:
    """Every ``[providers.NAME]``; a config without one cannot run anything."""
    table = root.child("providers")
    if table is None or not table.data:
        raise config_error(
            root.path,
            "providers",
            "has no entries",
            "add a [providers.NAME] table (see `openheim init`)",
        )
    return {name: read_provider(name, entry) for name, entry in table.children()}


def read_provider(name: str, table: Table) -> ProviderConfig:
    table.check_name(name)
    table.check_keys(settings_of(ProviderConfig) - {"name"})
    kind = table.value("kind", ProviderKind) or ProviderKind.infer(name)
    api_base = table.required("api_base", str, _api_base_fix(kind))
    if not _URL_RE.match(api_base):
        raise table.fail("api_base", f"is not an http(s) URL: {api_base!r}", _api_base_fix(kind))
    models = table.value("models", tuple[str, ...]) or ()
    default_model = table.value("default_model", str)
    if default_model is None:
        if not models:
            raise table.fail(
                "default_model", "is missing", 'add `default_model = "..."` and `models = [...]`'
            )
        default_model = models[0]
    if default_model not in models:
        models = (default_model, *models)
    env_var = table.value("env_var", str)
    if env_var is not None and not _ENV_VAR_RE.match(env_var):
        raise table.fail(
            "env_var", f"is not an environment variable name: {env_var!r}", "e.g. OPENAI_API_KEY"
        )
    prices = table.child("prices")
    windows = table.child("context_windows")
    by_model = table.child("reasoning_by_model")
    built: dict[str, object] = {} if prices is None else {"prices": read_prices(prices)}
    if by_model is not None:
        built["reasoning_by_model"] = read_reasoning_by_model(by_model)
    if windows is not None:
        built["context_windows"] = read_windows(windows)
    check_compact_at(table)
    return table.structure(
        ProviderConfig,
        name=name,
        kind=kind,
        api_base=api_base.rstrip("/"),
        default_model=default_model,
        models=models,
        # An empty string means "not set", as leaving the key out does.
        env_var=env_var or None,
        api_key=table.value("api_key", str) or None,
        **built,
    )


def check_compact_at(table: Table) -> None:
    """``compact_at`` is a share of the window: above 0.1 (or every turn would compact) and
    at most 1."""
    value = table.value("compact_at", float)
    if value is not None and not 0.1 <= value <= 1.0:
        raise table.fail(
            "compact_at", f"must be between 0.1 and 1, got {value:g}", "e.g. `compact_at = 0.8`"
        )


def read_windows(table: Table) -> dict[str, int]:
    """``[providers.NAME.context_windows]``: any model name, a positive token count each."""
    windows = {}
    for model in table.data:
        value = table.value(model, int)
        if value is None or value < 1024:
            fix = "give a whole number of tokens, at least 1024"
            raise table.fail(model, f"is not a token count: {value!r}", fix)
        windows[model] = value
    return windows


def read_prices(table: Table) -> dict[str, ModelPrice]:
    """``[providers.NAME.prices.MODEL]``: any model name may be priced."""
    prices = {}
    for model, entry in table.children():
        entry.check_keys(settings_of(ModelPrice))
        for name in ("input", "output"):
            entry.required(
                name, float, "give `input` and `output` in US dollars per million tokens"
            )
        prices[model] = entry.structure(ModelPrice)
    return prices


def read_reasoning_by_model(table: Table) -> dict[str, ReasoningLevel]:
    """``[providers.NAME.reasoning_by_model]``: ``"MODEL" = "off" | "low" | "medium" | "high"``."""
    levels = {}
    for model in table.data:
        level = table.value(model, ReasoningLevel)
        assert level is not None
        levels[model] = level
    return levels


def _api_base_fix(kind: ProviderKind) -> str:
    return f'set `api_base = "{_API_BASES[kind]}"` or your endpoint\'s URL'
