"""The commented config that ``openheim init`` writes."""

from __future__ import annotations

from pathlib import Path

from openheim.foundation.errors import ConfigError
from openheim.foundation.fsutil import atomic_write

DEFAULT_CONFIG = """\
# openheim configuration. Every key is documented in README.md.

# The provider used when --model is not given.
default_provider = "openai"
# LLM calls allowed per prompt before the turn stops with "max iterations reached".
max_iterations = 10
# system_prompt = "You are a careful engineer."   # replaces the built-in system prompt

# Each provider: kind = openai | openai_responses | anthropic | gemini | openai_compatible
# (inferred from the table name when absent: any other name is openai_compatible).
# Keys come from the environment variable named by env_var; api_key = "..." also works
# but keeps the secret in this file.

[providers.openai]
api_base = "https://api.openai.com/v1"
default_model = "gpt-4.1"
models = ["gpt-4.1", "gpt-4.1-mini", "o4-mini"]
env_var = "OPENAI_API_KEY"
# timeout_secs = 120            # longest wait for the next bytes of a response
# max_tokens = 4096             # maximum output tokens per LLM call
# max_retries = 4               # retries on 429, 5xx and network errors, with backoff
# max_in_flight = 8             # requests at once on this key, shared by all sessions
# requests_per_minute = 500     # spaces request starts evenly
# reasoning = "off"             # off | low | medium | high: how hard models think first
#                               # (Anthropic: thinking budget; Gemini: thinkingBudget;
#                               # OpenAI: reasoning_effort, for reasoning models only)
# [providers.openai.reasoning_by_model]   # per model, wins over `reasoning`
# "o4-mini" = "medium"
#
# Optional prices, US dollars per million tokens, give a cost per turn and conversation:
# [providers.openai.prices."gpt-4.1"]
# input = 2.0
# output = 8.0
# cache_read = 0.5

[providers.anthropic]
api_base = "https://api.anthropic.com/v1"
default_model = "claude-sonnet-4-5"
models = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"]
env_var = "ANTHROPIC_API_KEY"

[providers.gemini]
api_base = "https://generativelanguage.googleapis.com/v1beta"
default_model = "gemini-2.5-flash"
models = ["gemini-2.5-flash", "gemini-2.5-pro"]
env_var = "GEMINI_API_KEY"

# A local OpenAI-compatible server (Ollama, vLLM, LM Studio): no key needed.
[providers.ollama]
api_base = "http://localhost:11434/v1"
default_model = "llama3.2"
models = ["llama3.2", "qwen2.5-coder"]
# recover_text_tool_calls = true   # run a reply that is exactly a JSON tool call
#                                  # (on by default for openai_compatible only)

# Limits of the built-in tools.
# [tools]
# command_timeout_secs = 120    # execute_command timeout
# output_limit_bytes = 65536    # per stream (stdout, stderr) of a command
# read_limit_bytes = 262144     # read_file size cap

# MCP servers: their tools are exposed as "{server}__{tool}".
# [mcp_servers.filesystem]
# command = "npx"
# args = ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]
#
# [mcp_servers.remote-tools]
# url = "http://localhost:8080/mcp"

# `openheim serve`: without tokens it serves one local user on 127.0.0.1 only.
# [server]
# tokens_file = "tokens.toml"   # a [tokens] table: "<token>" = "<tenant>"
# workspace_root = "/srv/work"  # tenants get <root>/<tenant>; default: where serve starts
# allowed_origins = ["https://app.example.com"]
# on_disconnect = "keep"        # or "cancel" running turns when a client drops
# allow_web_fetch = false       # true: tenants get the web_fetch tool too
"""


def write_default_config(path: Path, *, force: bool = False) -> None:
    """Write the default config; an existing file is only replaced with ``force``."""
    if path.exists() and not force:
        raise ConfigError(
            f"{path} already exists; fix: edit it, or run `openheim init --force` to replace it."
        )
    try:
        atomic_write(path, DEFAULT_CONFIG.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the config file: {exc}") from None
