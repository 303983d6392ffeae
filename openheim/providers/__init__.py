"""LLM providers: sans-IO wire-format cores plus the client that does their I/O."""
