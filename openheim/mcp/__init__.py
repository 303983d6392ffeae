"""MCP servers from the config, each run by a supervised actor; ``mcp`` is imported lazily."""
