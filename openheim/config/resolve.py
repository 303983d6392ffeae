"""Choosing a provider and model, and finding a provider's API key."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from openheim.config.model import Config, ProviderConfig
from openheim.foundation.errors import ConfigError


@attrs.frozen
class ModelChoice:
    provider: ProviderConfig
    model: str

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"


def resolve_model(config: Config, spec: str | None, *, provider: str | None = None) -> ModelChoice:
    """Resolve ``--model``: a model listed by any provider, or ``provider/model``.

    A listed model wins over the ``provider/model`` reading because model names may contain
    ``/`` themselves (``meta-llama/Llama-3-8B`` on vLLM). The default provider is asked first,
    then the others in alphabetical order, so the answer never depends on file order.
    ``provider`` pins the provider (a resumed conversation keeps the one it was made with).
    """
    if provider is not None:
        if provider not in config.providers:
            raise ConfigError(
                f"{config.path}: provider {provider!r} is not configured; fix: add "
                f"[providers.{provider}] or choose a model with --model provider/model.",
                public=f"provider {provider!r} is not configured on this server",
            )
        chosen = config.providers[provider]
        return ModelChoice(chosen, spec or chosen.default_model)
    if not spec:
        default = config.providers[config.default_provider]
        return ModelChoice(default, default.default_model)
    for candidate in _search_order(config):
        if spec in candidate.models:
            return ModelChoice(candidate, spec)
    head, sep, tail = spec.partition("/")
    if sep and tail and head in config.providers:
        return ModelChoice(config.providers[head], tail)
    available = ", ".join(f"{p.name}/{m}" for p in _search_order(config) for m in p.models)
    problem = f"model {spec!r} is not listed by any provider; fix: use one of {available}"
    raise ConfigError(
        f"{config.path}: {problem}, write it as PROVIDER/MODEL, or add it to a provider's "
        "`models`.",
        public=f"{problem}.",
    )


def _search_order(config: Config) -> list[ProviderConfig]:
    rest = sorted(name for name in config.providers if name != config.default_provider)
    return [config.providers[config.default_provider], *(config.providers[n] for n in rest)]


def resolve_api_key(
    config_path: object, provider: ProviderConfig, env: Mapping[str, str]
) -> str | None:
    """The key from ``env_var`` if set and not blank, else the inline ``api_key``.

    Returns ``None`` for a keyless OpenAI-compatible server; raises when a key is needed.
    """
    if provider.env_var:
        value = env.get(provider.env_var, "").strip()
        if value:
            return value
    if provider.api_key:
        return provider.api_key
    if provider.env_var:
        raise ConfigError(
            f"{config_path}: `providers.{provider.name}.env_var` names {provider.env_var}, "
            f"which is not set; fix: export {provider.env_var}=<your key> (no key at hand? "
            "`make demo` in a source checkout runs the agent offline against a fake model)."
        )
    if provider.key_required:
        raise ConfigError(
            f"{config_path}: `providers.{provider.name}` has no API key; fix: add "
            f'`env_var = "{provider.name.upper()}_API_KEY"` and export that variable.'
        )
    return None
