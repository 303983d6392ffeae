"""The TLS setting of a provider's HTTP client: certificates only where TLS can happen.

httpx builds a verifying context for every client, loading certifi's ~150 CA certificates
(~20 ms, a twentieth of ``openheim run``'s start). A provider at a plain ``http://`` address
(a local model server) never speaks TLS: redirects are not followed, so the only TLS left is
an ``https://`` proxy from the environment. Without one, such a client gets a verifying
context with no certificates: if anything ever tried TLS through it, the handshake would
fail instead of trusting the peer.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit


def client_verify(api_base: str, proxies: Mapping[str, str]) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a client of ``api_base``, given the environment's ``proxies``
    (``urllib.request.getproxies()``, which httpx reads too): True (httpx's default) unless
    the client can never need certificates."""
    if urlsplit(api_base).scheme != "http":
        return True
    if any(urlsplit(proxy).scheme == "https" for proxy in proxies.values()):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, trusts nothing
