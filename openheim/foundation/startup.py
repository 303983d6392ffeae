"""What the ``openheim`` command does before anything else, for a fast start.

httpx and httpcore import optional parts whenever the packages behind them are installed:
httpx its command-line client (``httpx._main``: click, rich and pygments, ~29 ms) because quart
brings click, and httpcore its HTTP/2 connections (h2, hpack, hyperframe, ~12 ms) because
hypercorn brings h2. openheim's clients speak HTTP/1.1 and never run httpx's CLI, so the
command marks those modules absent: a ``None`` entry in ``sys.modules`` makes their import
fail, and httpx and httpcore fall back to their own stand-ins, as when the extras are not
installed. Only the command does this, never ``import openheim``: a program that uses openheim
as a library keeps httpx whole.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: Optional modules of our HTTP client that no face of the command uses.
UNUSED_OPTIONAL_MODULES = ("httpx._main", "httpcore._sync.http2", "httpcore._async.http2")


def skip_unused_optional_modules() -> None:
    """Mark the unused optional modules absent, unless httpx is already loaded (then they are
    too, and the saving is gone)."""
    if "httpx" in sys.modules or "httpcore" in sys.modules:
        return
    for name in UNUSED_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[assignment]


@contextmanager
def without_anyio() -> Iterator[None]:
    """Import with anyio marked absent, unless something has loaded it already.

    httpcore imports anyio when it is installed (~15 ms of ``openheim run`` with anyio's
    streams and sockets) for the locks it takes under asyncio; under trio it takes trio's, and
    the command runs only on trio. The mark is removed afterwards, so what needs anyio later
    (the MCP SDK, when the config names a server) imports it as usual.
    """
    if "anyio" in sys.modules:
        yield
        return
    sys.modules["anyio"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if "anyio" in sys.modules and sys.modules["anyio"] is None:
            del sys.modules["anyio"]
