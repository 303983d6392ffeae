"""web_fetch against a small HTTP server on 127.0.0.1: HTML to text, caps, redirects, refusals."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import attrs
import pytest
import trio

from openheim.sandbox.policy import SandboxPolicy
from openheim.sandbox.sandbox import NoBackend, Sandbox
from openheim.tools.base import ToolContext
from openheim.tools.html_text import html_to_text
from openheim.tools.web import WebFetchTool

PAGE = (
    "<html><head><title>Docs</title><style>p{}</style></head><body><nav>menu</nav>"
    "<h2>Install</h2><p>Run <code>pip install x</code> or see <a href='/more'>more</a>.</p>"
    "<ul><li>one</li><li>two</li></ul><script>alert(1)</script></body></html>"
)


@attrs.frozen
class Route:
    status: int
    headers: dict[str, str]
    body: bytes


def routes(port: int) -> dict[str, Route]:
    html = {"Content-Type": "text/html; charset=utf-8"}
    return {
        "/page": Route(200, html, PAGE.encode()),
        "/plain": Route(200, {"Content-Type": "text/plain"}, b"just text\n"),
        "/big": Route(200, {"Content-Type": "text/plain"}, b"a" * 5000),
        "/bin": Route(200, {"Content-Type": "image/png"}, b"\x89PNG\x00\x00"),
        "/missing": Route(404, {"Content-Type": "text/plain"}, b"no such page"),
        "/hop": Route(302, {"Location": "/page"}, b""),
        "/loop": Route(302, {"Location": "/loop"}, b""),
        "/ftp": Route(302, {"Location": "ftp://127.0.0.1/x"}, b""),
        "/far": Route(302, {"Location": f"http://127.0.0.1:{port}/plain"}, b""),
    }


async def serve(stream: trio.SocketStream, table: Callable[[], dict[str, Route]]) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return
        request += chunk
    path = request.split(b" ")[1].decode()
    if path == "/slow":
        await trio.sleep_forever()
    route = table().get(path, Route(404, {}, b""))
    head = [f"HTTP/1.1 {route.status} X", f"Content-Length: {len(route.body)}"]
    head += [f"{name}: {value}" for name, value in route.headers.items()]
    head.append("Connection: close")
    await stream.send_all(("\r\n".join(head) + "\r\n\r\n").encode() + route.body)
    await stream.aclose()


@pytest.fixture
async def base_url(nursery: trio.Nursery) -> AsyncIterator[str]:
    port = 0

    def table() -> dict[str, Route]:
        return routes(port)

    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, lambda s: serve(s, table), 0, host="127.0.0.1")
    )
    port = listeners[0].socket.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


async def fetch(url: str, tool: WebFetchTool | None = None, **context: object) -> tuple[str, bool]:
    tool = tool or WebFetchTool()
    result = await tool.call({"url": url}, ToolContext(cwd=Path("/"), **context))  # type: ignore[arg-type]
    return result.content, result.is_error


async def test_html_becomes_readable_text(base_url: str) -> None:
    text, failed = await fetch(f"{base_url}/page")
    assert not failed
    assert text == (
        f"URL: {base_url}/page\nStatus: 200\nContent-Type: text/html\n\n"
        "# Docs\n\n## Install\n\nRun `pip install x` or see [more](/more).\n\n- one\n- two"
    )


async def test_redirects_are_followed_checked_and_counted(base_url: str) -> None:
    text, failed = await fetch(f"{base_url}/hop")
    assert not failed and text.startswith(f"URL: {base_url}/page\nStatus: 200")
    assert (await fetch(f"{base_url}/far"))[0].endswith("just text\n")
    text, failed = await fetch(f"{base_url}/loop", WebFetchTool(max_redirects=2))
    assert failed and text.endswith("more than 2 redirects")
    text, failed = await fetch(f"{base_url}/ftp")
    assert failed and text.startswith("Redirected to a URL that is not fetched:")


async def test_caps_errors_and_binary(base_url: str) -> None:
    text, failed = await fetch(f"{base_url}/big", WebFetchTool(max_bytes=100))
    assert not failed and text.endswith("a" * 100 + "\n[... page cut at 100 bytes]")
    text, failed = await fetch(f"{base_url}/missing")
    assert failed and "Status: 404" in text and text.endswith("no such page")
    text, failed = await fetch(f"{base_url}/bin")
    assert not failed and text.endswith("[binary content, 6 bytes; not shown]")
    text, failed = await fetch(f"{base_url}/slow", WebFetchTool(timeout=0.2))
    assert failed and text == f"Could not fetch {base_url}/slow: no answer within 0.2 s"


async def test_only_http_and_only_with_the_network() -> None:
    assert await fetch("file:///etc/passwd") == (
        "'url' must be an http:// or https:// URL, not 'file:///etc/passwd'",
        True,
    )
    offline = SandboxPolicy(writable=(Path("/tmp"),), network=False)
    text, failed = await fetch("http://127.0.0.1:9/", sandbox=Sandbox(NoBackend(), offline))
    assert failed and text.startswith("web_fetch is off: this session has no network")


def test_html_conversion_keeps_structure_and_drops_chrome() -> None:
    html = (
        "<p>a<br>b</p><pre>x\n  y</pre><ol><li>first</li><li>second</li></ol>"
        "<table><tr><th>k</th><th>v</th></tr></table><p hidden>gone</p><footer>f</footer>"
    )
    assert html_to_text(html) == "a\nb\n\n```\nx\n  y\n```\n\n1. first\n2. second\n\n| k | v"
