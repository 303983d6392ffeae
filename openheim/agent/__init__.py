"""The agent loop: LLM turn, tool execution, repeat."""
