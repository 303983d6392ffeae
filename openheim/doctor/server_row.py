"""The doctor's [server] row: the tokens ``serve`` would read, and the workspace root."""

from __future__ import annotations

import trio

from openheim.config.load import read_tokens
from openheim.config.model import Config, ServerConfig
from openheim.doctor.rows import Row, Status, plural, split_fix
from openheim.foundation.errors import ConfigError


async def check_server(config: Config) -> list[Row]:
    """Only with a [server] section; without one there is nothing ``serve``-specific to say."""
    server = config.server
    if server == ServerConfig():
        return []
    try:
        tokens = await trio.to_thread.run_sync(read_tokens, config)
    except ConfigError as exc:
        detail, fix = split_fix(str(exc))
        return [Row("server", "", Status.FAIL, detail, fix or "correct `server.tokens_file`")]
    tenants = sorted(set(tokens.values()))
    parts = [
        f"{plural(len(tokens), 'token')} for {plural(len(tenants), 'tenant')}"
        if tokens
        else "no tokens: `serve` accepts loopback clients only"
    ]
    data: dict[str, object] = {"tokens": len(tokens), "tenants": tenants}
    root = server.workspace_root
    if root is not None:
        data["workspace_root"] = str(root)
        if not await trio.Path(root).is_dir():
            return [
                Row(
                    "server",
                    "",
                    Status.FAIL,
                    f"`server.workspace_root` {root} is not a folder",
                    f"create it (mkdir -p {root}) or correct the setting",
                    data=data,
                )
            ]
        parts.append(f"workspace {root}")
    return [Row("server", "", Status.OK, "; ".join(parts), data=data)]
