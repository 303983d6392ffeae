"""REST routes (quart-trio): read-only JSON views of config, tools, skills, MCP and sessions.

openheim 0.1's routes and shapes, with these differences (all compatible for its clients):

- Every route but ``/healthz`` is per tenant and needs a token when tokens are configured
  (401 ``{"error", "code": "unauthorized"}``). Errors are ``{"error": "<message>", "code":
  "<machine code>"}``: openheim's ``error`` strings are kept, ``code`` is added.
- ``/api/config`` is an explicit allow-list: no ``api_key`` ever, provider ``api_base`` and MCP
  ``url`` without userinfo and with query values redacted (``api-version`` excepted), MCP
  ``env`` values as ``"<redacted>"``, MCP ``headers`` as names only, and MCP ``args`` redacted
  where they look secret (the value after a ``--token``/``--api-key``-like flag,
  ``--flag=value`` and ``NAME=value`` with such a name, URL credentials, strings shaped like
  keys). That is a heuristic: secrets belong in ``env``, which is always redacted.
- ``/api/sessions`` stays a JSON array, newest first, paginated by ``?limit=`` (default 100,
  at most 1000) and ``?offset=``; a ``Link: <...>; rel="next"`` header says there is more.
  Session bodies are ``rest_models``' own, read through the session layer's ``catalog``, so
  how history is stored never shows in them.
- CORS headers go only to allowed origins (``auth``), never ``*``.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

import trio
from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from openheim.acp import schema
from openheim.config.model import Config, McpServerConfig, ProviderConfig
from openheim.foundation.errors import ConversationNotFoundError, HistoryError
from openheim.foundation.redact import REDACTED, redact_args, strip_url_credentials
from openheim.logs import bind_log_context
from openheim.server import rest_models
from openheim.server.auth import bearer_token, refusal
from openheim.server.ui_assets import is_ui_path, register_ui
from openheim.session import catalog
from openheim.skills import installed_skills

if TYPE_CHECKING:
    from openheim.mcp.supervisor import McpSupervisor
    from openheim.server.state import ServerState

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]+")
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _public_provider(provider: ProviderConfig) -> dict[str, Any]:
    return {
        "kind": provider.kind.value,
        "api_base": strip_url_credentials(provider.api_base),
        "default_model": provider.default_model,
        "models": list(provider.models),
        "env_var": provider.env_var,
        "timeout_secs": _number(provider.timeout_secs),
        "max_tokens": provider.max_tokens,
    }


def _public_mcp(server: McpServerConfig) -> dict[str, Any]:
    return {
        "transport": server.transport,
        "command": server.command,
        "args": redact_args(server.args),
        "env": {name: REDACTED for name in server.env},
        "url": strip_url_credentials(server.url) if server.url else None,
        "headers": sorted(server.headers),
        "enabled": server.enabled,
    }


def public_config(config: Config, sandbox: dict[str, Any] | None = None) -> dict[str, Any]:
    """``GET /api/config``: built field by field, so a new secret field never leaks by default."""
    return {
        "sandbox": sandbox,
        "default_provider": config.default_provider,
        "max_iterations": config.max_iterations,
        "providers": {
            name: _public_provider(config.providers[name]) for name in sorted(config.providers)
        },
        "mcp_servers": {
            name: _public_mcp(config.mcp_servers[name]) for name in sorted(config.mcp_servers)
        },
    }


def mcp_status(config: Config, supervisor: McpSupervisor | None) -> list[dict[str, Any]]:
    """``GET /api/mcp-servers``: live state of the configured servers (disabled ones too)."""
    live = {row["name"]: row for row in supervisor.describe()} if supervisor else {}
    statuses = []
    for name in sorted(config.mcp_servers):
        if name in live:
            statuses.append(live[name])
            continue
        server = config.mcp_servers[name]
        status: dict[str, Any] = {"name": name, "transport": server.transport}
        if server.command:
            status["command"] = server.command
        if server.url:
            status["url"] = strip_url_credentials(server.url)
        status |= {"state": "disabled", "connected": False, "tool_count": 0, "tools": []}
        status |= {"restarts": 0, "error": "disabled in the config"}
        statuses.append(status)
    return statuses


# --- the app ---------------------------------------------------------------------------------


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, headers=headers, mimetype="application/json")


def error_response(status: int, message: str, code: str) -> Response:
    return json_response({"error": message, "code": code}, status)


def _page_argument(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= maximum or (name == "limit" and value == 0):
        lowest = 1 if name == "limit" else 0
        raise _BadQuery(f"{name} must be an integer from {lowest} to {maximum}")
    return value


class _BadQuery(Exception):
    pass


def _request_id(given: str | None) -> str:
    """The caller's ``X-Request-Id`` when it is a sane token (a proxy's), else a new one."""
    if given and len(given) <= 128 and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _metrics_refusal(state: ServerState) -> Response | None:
    """``/metrics`` spans every tenant: with tenant tokens it takes its own token."""
    if state.metrics is None:
        return error_response(404, "metrics are not enabled", "not_found")
    why = refusal(state.access, origin=None, host=request.headers.get("Host"))
    if why is not None:
        return error_response(403, why, "forbidden")
    if state.access.open:
        return None
    expected = state.metrics_token
    if expected is None:
        return error_response(
            403,
            "set [server] metrics_token or OPENHEIM_METRICS_TOKEN to scrape /metrics on a "
            "server with tokens",
            "forbidden",
        )
    given = bearer_token(request.headers.get("Authorization")) or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return error_response(
            401, "/metrics needs [server] metrics_token as a bearer token", "unauthorized"
        )
    return None


def create_rest_app(state: ServerState) -> QuartTrio:
    """The REST app over a ``ServerState`` (config, access rules, tenants)."""
    app = QuartTrio("openheim.server")
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    config: Config = state.config

    @app.before_request
    async def gate() -> Response | None:
        g.request_id = _request_id(request.headers.get("X-Request-Id"))
        bind_log_context(request_id=g.request_id)
        if request.path == "/healthz":
            return None
        if request.path == "/metrics":
            return _metrics_refusal(state)
        origin = request.headers.get("Origin")
        why = refusal(state.access, origin=origin, host=request.headers.get("Host"))
        if why is not None:
            return error_response(403, why, "forbidden")
        if is_ui_path(request.path):
            return None  # static files of the browser UI: no data, no token
        if request.method == "OPTIONS":
            preflight = Response("", status=204)
            del preflight.headers["Content-Type"]  # a 204 has no body, so no type either
            return preflight
        tenant = state.access.tenant_for(bearer_token(request.headers.get("Authorization")))
        if tenant is None:
            response = error_response(
                401, "missing or unknown token: send Authorization: Bearer <token>", "unauthorized"
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        g.tenant = await state.tenants.get(tenant)
        return None

    @app.after_request
    async def cors(response: Response) -> Response:
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers["X-Request-Id"] = request_id
        origin = request.headers.get("Origin")
        if origin is not None and state.access.origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Link, X-Request-Id"
            response.headers["Vary"] = "Origin"
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = "Authorization"
                response.headers["Access-Control-Max-Age"] = "600"
        return response

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = re.sub(r"\W+", "_", (error.name or "error").lower()).strip("_")
        return error_response(status, (error.name or "error").lower(), code)

    @app.errorhandler(_BadQuery)
    async def bad_query(error: _BadQuery) -> Response:
        return error_response(400, str(error), "invalid_query")

    @app.get("/healthz")
    async def healthz() -> Response:
        if state.worker is not None:
            return json_response({"status": "ok", "worker": state.worker})
        return json_response({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        from openheim.server.metrics import CONTENT_TYPE

        assert state.metrics is not None
        body = state.metrics.render()
        if state.metrics_share is not None:
            body = await state.metrics_share.render(body)
        return Response(body, status=200, content_type=CONTENT_TYPE)

    @app.get("/api/config")
    async def get_config() -> Response:
        return json_response(public_config(config, state.sandbox))

    @app.get("/api/models")
    async def get_models() -> Response:
        return json_response(schema.models_meta(config))

    @app.get("/api/skills")
    async def get_skills() -> Response:
        skills_dir = g.tenant.runtime.paths.skills_dir
        return json_response(await trio.to_thread.run_sync(installed_skills, skills_dir))

    @app.get("/api/tools")
    async def get_tools() -> Response:
        return json_response(schema.tool_definitions(g.tenant.runtime.tools().definitions()))

    @app.get("/api/mcp-servers")
    async def get_mcp_servers() -> Response:
        return json_response(mcp_status(config, g.tenant.runtime.mcp))

    @app.get("/api/workspace")
    async def get_workspace() -> Response:
        return json_response({"tenant": g.tenant.name, "root": str(g.tenant.root)})

    @app.get("/api/sessions")
    async def list_sessions() -> Response:
        limit = _page_argument("limit", DEFAULT_PAGE, MAX_PAGE)
        offset = _page_argument("offset", 0, 2**31)
        try:
            found = await catalog.page(g.tenant.registry, limit=limit, offset=offset)
        except HistoryError:
            return error_response(500, "failed to load conversations", "history_error")
        headers = {}
        if found.more:
            headers["Link"] = f'</api/sessions?limit={limit}&offset={offset + limit}>; rel="next"'
        return json_response(rest_models.sessions_json(found.metas), headers=headers)

    @app.get("/api/sessions/<session_id>")
    async def get_session(session_id: str) -> Response:
        try:
            session_id = str(uuid.UUID(session_id))
        except ValueError:
            return error_response(400, "invalid session id", "invalid_session_id")
        try:
            found = await catalog.transcript(g.tenant.registry, session_id)
        except ConversationNotFoundError:
            return error_response(404, "session not found", "session_not_found")
        except HistoryError:
            return error_response(500, "failed to load session", "history_error")
        return json_response(rest_models.transcript_json(found))

    register_ui(app)
    return app
