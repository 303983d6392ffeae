"""The secrets a configuration holds: what must never appear in a log line, an error text or
a tool's environment."""

from __future__ import annotations

from collections.abc import Mapping

from openheim.config.model import Config


def config_secrets(config: Config, env: Mapping[str, str]) -> list[str]:
    """What must never appear in a log line: provider keys (inline or from their env
    variables), server tokens, the metrics token, MCP env and header values, the store URL."""
    found = [p.api_key or "" for p in config.providers.values()]
    found += [env.get(p.env_var, "") for p in config.providers.values() if p.env_var]
    found += [*config.server.tokens, config.server.metrics_token or ""]
    for server in config.mcp_servers.values():
        found += [*server.env.values(), *server.headers.values()]
    found += [config.store.url or "", env.get(config.store.url_env, "")]
    found.append(env.get("OPENHEIM_METRICS_TOKEN", ""))
    return [secret for secret in found if secret]
