"""Tools the model can call: a small protocol, a registry and the built-ins."""

from openheim.tools.base import Tool, ToolContext, ToolRegistry

__all__ = ["Tool", "ToolContext", "ToolRegistry"]
