"""openheim: a fast, multi-provider LLM agent runtime on trio."""

__version__ = "0.1.0"

#: What the library offers at the top level, and where each name lives. Lazy, so
#: `import openheim` (and the CLI's --help) does not load the whole runtime.
_PUBLIC = {
    "OpenheimClient": "openheim.client",
    "ToolDefinition": "openheim.foundation.models",
    "ToolResult": "openheim.foundation.models",
    "Conversation": "openheim.foundation.models",
    "Usage": "openheim.foundation.models",
    "OpenheimError": "openheim.foundation.errors",
    "ConfigError": "openheim.foundation.errors",
    "ProviderError": "openheim.foundation.errors",
    "HistoryError": "openheim.foundation.errors",
}


def __getattr__(name: str) -> object:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'openheim' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
