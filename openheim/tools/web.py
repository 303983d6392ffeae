"""``web_fetch``: one web page as text, for reading documentation and references.

http(s) only, every redirect checked and counted, the body read up to a byte cap and the
whole fetch bounded in time. HTML becomes Markdown-like text (``tools.html_text``); other text
is shown as is; binary content is named, not shown. The request is made by openheim itself,
so the tool is only registered where the session may use the network (see ``builtin_tools``),
and refuses anyway when the session's policy has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import trio

from openheim.foundation.models import ToolDefinition, ToolResult
from openheim.tools.base import ToolContext, ToolKind, cap_output
from openheim.tools.common import ArgumentError, error, required_str

if TYPE_CHECKING:
    import httpx

_REDIRECTS = (301, 302, 303, 307, 308)
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "+json", "+xml")


class WebFetchTool:
    """The ``web_fetch`` tool; see the module docstring."""

    kind = ToolKind.FETCH

    def __init__(
        self,
        *,
        max_bytes: int = 2 * 1024 * 1024,
        output_limit: int = 64 * 1024,
        timeout: float = 30.0,
        max_redirects: int = 5,
    ) -> None:
        self.max_bytes = max_bytes
        self.output_limit = output_limit
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._definition = ToolDefinition(
            name="web_fetch",
            description=(
                "Fetch a web page (http or https URL) and return its text: HTML is converted "
                "to Markdown-like text (headings, lists, links, code), other text is returned "
                "as is, binary content is not shown. Use it to read documentation, issues or "
                "references the user points to. Pages are read up to "
                f"{max_bytes // 1024} KiB and the text returned is cut at "
                f"{output_limit // 1024} KiB; the fetch is given up after {timeout:g} s and "
                f"{max_redirects} redirects. No cookies, no JavaScript, no logins."
            ),
            parameters={
                "type": "object",
                "properties": {"url": {"type": "string", "description": "http(s) URL to fetch."}},
                "required": ["url"],
            },
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        try:
            url = _checked_url(required_str(arguments, "url"))
        except ArgumentError as exc:
            return error(str(exc))
        if not context.sandbox.policy.network:
            return error("web_fetch is off: this session has no network ([sandbox] network)")
        import httpx  # lazily, though the providers have usually loaded it already

        with trio.move_on_after(self.timeout) as timer:
            try:
                client = httpx.AsyncClient(follow_redirects=False, timeout=self.timeout)
                async with client:
                    return await self._fetch(client, url)
            except httpx.HTTPError as exc:
                return error(f"Could not fetch {url}: {_describe(exc)}")
        assert timer.cancelled_caught
        return error(f"Could not fetch {url}: no answer within {self.timeout:g} s")

    async def _fetch(self, client: httpx.AsyncClient, url: str) -> ToolResult:
        for _ in range(self.max_redirects + 1):
            async with client.stream("GET", url, headers=_HEADERS) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    try:
                        url = _checked_url(urljoin(url, response.headers["location"]))
                    except ArgumentError as exc:
                        return error(f"Redirected to a URL that is not fetched: {exc}")
                    continue
                body, complete = await _read_capped(response, self.max_bytes)
                return self._answer(url, response, body, complete)
        return error(f"Could not fetch {url}: more than {self.max_redirects} redirects")

    def _answer(
        self, url: str, response: httpx.Response, body: bytes, complete: bool
    ) -> ToolResult:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        head = f"URL: {url}\nStatus: {response.status_code}\nContent-Type: {kind or 'unknown'}\n"
        if not _is_text(kind, body):
            return ToolResult(f"{head}\n[binary content, {len(body)} bytes; not shown]")
        text = body.decode(response.encoding or "utf-8", errors="replace")
        if "html" in kind or (not kind and "<html" in text[:1024].lower()):
            # Lazily: html.parser and the converter cost ~3 ms at every start otherwise.
            from openheim.tools.html_text import html_to_text

            text = html_to_text(text)
        if not complete:
            text += f"\n[... page cut at {self.max_bytes} bytes]"
        result = cap_output(f"{head}\n{text}", self.output_limit)
        return ToolResult(result, is_error=response.status_code >= 400)


_HEADERS = {
    "User-Agent": "openheim-web-fetch/1",
    "Accept": "text/html, text/markdown, text/plain, application/json;q=0.9, */*;q=0.5",
}


def _checked_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ArgumentError(f"'url' must be an http:// or https:// URL, not {url[:200]!r}")
    if not parts.hostname:
        raise ArgumentError(f"'url' has no host: {url[:200]!r}")
    return url.strip()


def _is_text(kind: str, body: bytes) -> bool:
    if kind.startswith("text/") or any(marker in kind for marker in _TEXT_TYPES):
        return True
    return not kind and b"\0" not in body[:8192]


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether that was all of it."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > limit:
            return bytes(data[:limit]), False
    return bytes(data), True


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
