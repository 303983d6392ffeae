"""The browser UI's static files: ``GET /`` and ``GET /ui/<name>``, from the package itself.

They hold no data, so they load without a token (the page then asks for one); the Host and
Origin rules still apply. Every response carries a strict Content-Security-Policy: scripts,
styles and images only from this origin, no inline code, sockets only back to this host, and
no framing, so injected markup in a model's reply could not run even if it were rendered.
"""

from __future__ import annotations

import re
from pathlib import Path

import trio
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import NotFound

#: The static files, shipped as package data (``pyproject.toml``); no build step.
UI_DIR = Path(__file__).with_name("ui")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}

#: Asset names: folders and a file name of safe characters; no ``..``, no hidden files.
_ASSET_NAME = re.compile(r"(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+")
#: A Host header we may echo into the CSP (host, IPv4, [IPv6], optional port).
_SANE_HOST = re.compile(r"[A-Za-z0-9.-]+(?::\d{1,5})?|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?")


def is_ui_path(path: str) -> bool:
    return path == "/" or path.startswith("/ui/")


def content_security_policy(host: str | None) -> str:
    """The page's CSP; ``connect-src`` names this host's sockets when the Host is sane."""
    sockets = f"ws://{host} wss://{host}" if host and _SANE_HOST.fullmatch(host) else "ws: wss:"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {sockets}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(host: str | None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(host),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


def asset_file(name: str) -> Path | None:
    """The file for ``/ui/<name>``, or None: unknown type, odd name, or not a file."""
    if not _ASSET_NAME.fullmatch(name):
        return None
    path = UI_DIR / name
    if path.suffix not in CONTENT_TYPES:
        return None
    return path


async def _serve(path: Path | None, host: str | None) -> Response | None:
    if path is None or not await trio.Path(path).is_file():
        return None
    body = await trio.Path(path).read_bytes()
    headers = security_headers(host)
    return Response(body, status=200, headers=headers, content_type=CONTENT_TYPES[path.suffix])


def register_ui(app: QuartTrio) -> None:
    """Add ``/`` and ``/ui/<name>`` to the REST app (its gate lets them through tokenless)."""

    @app.get("/")
    async def index() -> Response:
        found = await _serve(UI_DIR / "index.html", request.headers.get("Host"))
        if found is None:
            raise NotFound()
        return found

    @app.get("/ui/<path:name>")
    async def ui_asset(name: str) -> Response:
        found = await _serve(asset_file(name), request.headers.get("Host"))
        if found is None:
            raise NotFound()
        return found
