"""Configuration: loaded once into immutable objects and passed down explicitly."""

from openheim.config.model import (
    Config,
    McpServerConfig,
    ProviderConfig,
    ProviderKind,
    ToolsConfig,
)
from openheim.config.paths import Paths

__all__ = [
    "Config",
    "McpServerConfig",
    "Paths",
    "ProviderConfig",
    "ProviderKind",
    "ToolsConfig",
]
