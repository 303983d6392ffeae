"""How many tokens a model's request may hold: the configured window, else a known family's,
else a conservative fallback. A window too large is the dangerous mistake (the provider refuses
the request); too small only compacts early, so unknown models get a small one."""

from __future__ import annotations

from openheim.config.model import ProviderConfig

#: Used when neither the config nor the family table knows the model.
FALLBACK_WINDOW = 8_192

#: Model-name prefixes of well-known families, most specific first, with their windows as the
#: providers publish them (tokens, prompt plus reply).
FAMILY_WINDOWS: tuple[tuple[str, int], ...] = (
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 16_385),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("claude-", 200_000),
    ("gemini-1.5-pro", 2_097_152),
    ("gemini-", 1_048_576),
    ("deepseek", 128_000),
    ("qwen", 32_768),
    ("llama3", 8_192),
    ("llama-3", 8_192),
    ("mistral", 32_768),
)


def family_window(model: str) -> int | None:
    """The published window of ``model``'s family, if openheim knows it."""
    name = model.lower().rsplit("/", 1)[-1]
    for prefix, window in FAMILY_WINDOWS:
        if name.startswith(prefix):
            return window
    return None


def window_source(provider: ProviderConfig, model: str) -> str:
    """Where ``context_window`` takes ``model``'s window from, in the words doctor shows."""
    if model in provider.context_windows:
        return "context_windows"
    if provider.context_window is not None:
        return "context_window"
    return "family default" if family_window(model) else "fallback"


def context_window(provider: ProviderConfig, model: str) -> int:
    """The window a request to ``model`` on ``provider`` may fill."""
    configured = provider.context_windows.get(model, provider.context_window)
    if configured is not None:
        return configured
    return family_window(model) or FALLBACK_WINDOW
