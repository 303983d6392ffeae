"""openheim: a fast, multi-provider LLM agent runtime on trio."""

__version__ = "0.1.0"
