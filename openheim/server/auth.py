"""Who is asking, and from where: bearer tokens → tenants, Origin and Host checks.

Pure functions over header values; the REST and WebSocket faces call them before anything else.

- **Tokens on** (``[server] tokens`` / ``tokens_file``): every request except ``/healthz`` and
  the browser UI's static files needs ``Authorization: Bearer <token>``. Browsers cannot set
  headers on WebSockets, so those may offer the subprotocol ``openheim.bearer.<base64url of the
  token>`` beside the real one, ``openheim.v1`` (the server echoes only the real one, and the
  token stays out of URLs and access logs), or pass ``?token=``. Unknown or missing → REST
  401, WebSocket accepted then closed with code 4401.
- **Tokens off**: one implicit tenant, ``local``, and the server must be bound to loopback
  (``serve`` refuses otherwise). A web page the user happens to visit could still reach
  ``localhost``, so browsers are held to loopback origins (pitfall 1: drive-by pages), and the
  ``Host`` header must name loopback too, which defeats DNS rebinding (a hostile name resolving
  to 127.0.0.1 makes same-origin requests that carry no ``Origin`` at all).
- **Origins**, either way: a request without ``Origin`` (curl, SDKs, native apps) passes; a
  browser's ``Origin`` must be a loopback origin or one listed in ``allowed_origins``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

import attrs

#: The tenant of a server without tokens.
LOCAL_TENANT = "local"

#: WebSocket close code for a missing or unknown token (4000 + HTTP 401).
CLOSE_UNAUTHORIZED = 4401

#: The WebSocket subprotocol of ``/ws`` and ``/acp``, echoed when a client offers it.
SUBPROTOCOL = "openheim.v1"
#: Prefix of the subprotocol that carries a browser's token (never echoed).
BEARER_PROTOCOL = "openheim.bearer."


def is_loopback_host(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1`` (brackets allowed); anything else may be remote."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_of(netloc: str) -> str:
    try:
        return urlsplit(f"//{netloc}").hostname or ""
    except ValueError:
        return ""


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def query_token(query_string: bytes | str) -> str | None:
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    values = parse_qs(text).get("token")
    return values[0] if values else None


def protocol_token(offered: Iterable[str]) -> str | None:
    """The token a browser offered as ``openheim.bearer.<base64url>`` (padding optional)."""
    for protocol in offered:
        if not protocol.startswith(BEARER_PROTOCOL):
            continue
        encoded = protocol.removeprefix(BEARER_PROTOCOL)
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            return raw.decode("utf-8") or None
        except (binascii.Error, ValueError):
            return None
    return None


def chosen_subprotocol(offered: Iterable[str]) -> str | None:
    """The subprotocol to echo: ours when offered; a bearer one never (it holds the token)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


@attrs.frozen
class Access:
    """The server's access rules; built once at start from the config."""

    #: token → tenant name; empty means "no tokens: loopback only, one local tenant".
    tokens: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    allowed_origins: frozenset[str] = frozenset()

    @property
    def open(self) -> bool:
        return not self.tokens

    def tenant_for(self, token: str | None) -> str | None:
        """The tenant a token belongs to; ``local`` when tokens are off; None = refused.

        Every configured token is compared in constant time, so timing says nothing about
        how much of a guess was right.
        """
        if self.open:
            return LOCAL_TENANT
        if not token:
            return None
        found = None
        for known, tenant in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = tenant
        return found

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None:
            return True
        normal = origin.strip().rstrip("/").lower()
        if normal in self.allowed_origins:
            return True
        parts = urlsplit(normal)
        return parts.scheme in ("http", "https") and is_loopback_host(parts.hostname or "")

    def host_allowed(self, host: str | None) -> bool:
        """With tokens off only loopback names may address us (see the module doc)."""
        if not self.open or host is None:
            return True
        return is_loopback_host(_host_of(host))


def refusal(access: Access, *, origin: str | None, host: str | None) -> str | None:
    """Why a request is refused before authentication (403), or None."""
    if not access.origin_allowed(origin):
        return f"origin {origin} is not allowed; add it to [server] allowed_origins"
    if not access.host_allowed(host):
        return "this server answers only to localhost; configure tokens to serve other hosts"
    return None
