"""``session/new`` and ``session/load`` params, checked: bad ones are ``-32602`` naming only
what the client sent; the log gets the whole story."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from openheim.acp import schema
from openheim.acp.codec import RpcError, invalid_params
from openheim.acp.session_state import model_labels
from openheim.config.model import ClientMcpPolicy, Config
from openheim.config.resolve import resolve_model
from openheim.foundation.errors import ConfigError, OpenheimError
from openheim.session import Session, SessionOptions

log = logging.getLogger(__name__)


def refused(exc: OpenheimError) -> RpcError:
    """Bad session params: the client sees what it sent, the log the whole story."""
    log.info("refused session params: %s", exc)
    return invalid_params(exc.public)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _folder(value: Any, name: str) -> Path:
    """An absolute folder path a client sent; -32602 naming only what it sent."""
    if not isinstance(value, str) or not Path(value).is_absolute():
        raise invalid_params(f"{name} must be an absolute path, got {value!r}")
    if "\0" in value or not _encodable(value):
        raise invalid_params(f"{name} is not a valid path: it has a NUL byte or a lone surrogate")
    return Path(value)


#: More extra roots than any editor window holds; a bound on what one request makes us check.
MAX_ADDITIONAL_DIRECTORIES = 32


def _additional(value: Any) -> tuple[Path, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid_params("additionalDirectories must be an array of absolute paths")
    if len(value) > MAX_ADDITIONAL_DIRECTORIES:
        raise invalid_params(
            f"additionalDirectories: at most {MAX_ADDITIONAL_DIRECTORIES} folders, got {len(value)}"
        )
    return tuple(
        dict.fromkeys(_folder(item, f"additionalDirectories[{i}]") for i, item in enumerate(value))
    )


def session_options(
    params: dict[str, Any], allowed: ClientMcpPolicy = ClientMcpPolicy.ALL
) -> SessionOptions:
    """``session/new``, ``load`` and ``resume`` params: cwd, additionalDirectories,
    mcpServers, ``_meta.model/skills``."""
    cwd = str(_folder(params.get("cwd"), "cwd"))
    additional = _additional(params.get("additionalDirectories"))
    servers = schema.mcp_servers(params.get("mcpServers"))
    for server in servers:
        if allowed is ClientMcpPolicy.NONE or (
            allowed is ClientMcpPolicy.HTTP and server.transport != "http"
        ):
            raise invalid_params(
                f"mcpServers: this server does not start {server.transport} MCP servers for "
                f"clients ({server.name!r}); its operator sets [server] client_mcp_servers"
            )
    meta = params.get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    model = meta.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid_params("_meta.model must be a string")
    skills = meta.get("skills")
    if skills is not None and (
        not isinstance(skills, list) or not all(isinstance(s, str) for s in skills)
    ):
        raise invalid_params("_meta.skills must be an array of strings")
    return SessionOptions(
        cwd=Path(cwd),
        model=model or None,
        skills=tuple(skills) if skills is not None else None,
        mcp_servers=servers,
        additional_roots=additional,
    )


def set_model(config: Config, session: Session, value: Any) -> None:
    """Switch ``session`` to the model the client chose, one of those it was offered."""
    labels = model_labels(config, session.choice)
    if isinstance(value, str):
        try:
            label = resolve_model(config, value).label
        except ConfigError:
            label = None
        if label in labels:
            session.set_model(value)
            return
    raise invalid_params(f"unknown model {value!r}; choose one of: {', '.join(labels)}")
