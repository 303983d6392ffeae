"""openheim: a fast, multi-provider LLM agent runtime on trio."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy, so `import openheim` (and the CLI's --help) does not load the whole runtime.
    if name == "OpenheimClient":
        from openheim.client import OpenheimClient

        return OpenheimClient
    raise AttributeError(f"module 'openheim' has no attribute {name!r}")
