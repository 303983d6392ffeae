"""One exception hierarchy: every error openheim defines for others to catch is an
``OpenheimError``, so faces catch one base and print one line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import openheim
from openheim.foundation.errors import OpenheimError

#: Exceptions that are not user-facing errors, and why.
NOT_ERRORS = {
    # A JSON-RPC error object: a protocol value answered to the peer, not a failure of ours.
    "openheim.acp.codec.RpcError",
}


def defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(openheim.__path__, "openheim."):
        try:
            module = importlib.import_module(module_info.name)
        except ImportError:  # an optional extra that is not installed (otel)
            continue
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_public_exception_is_an_openheim_error() -> None:
    exceptions = defined_exceptions()
    assert "openheim.server.fs.paths.FsError" in exceptions  # the walk reaches the faces
    strays = {
        name
        for name, cls in exceptions.items()
        if not issubclass(cls, OpenheimError) and name not in NOT_ERRORS
    }
    assert strays == set()
