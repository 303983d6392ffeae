"""What the file tools share: a path as the model sent it, the sandbox's refusals, and the
one-line errors and argument checks whose messages go back to the model.

Messages always name a path as the model wrote it, never where it lives on the server (a
tenant must not learn where its workspace is).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import trio

from openheim.foundation.errors import ClientError
from openheim.foundation.models import ToolResult
from openheim.sandbox.paths import Access, Confinement, InvalidPath, PathRefused, check
from openheim.sandbox.policy import SandboxPolicy


def resolve_path(raw: str, cwd: Path) -> Path:
    """``raw`` with ``~`` expanded, made absolute against ``cwd``."""
    path = Path(raw).expanduser()
    return path if path.is_absolute() else cwd / path


def absolute(path: Path) -> str:
    """For the resolver; a context's cwd is absolute, but one made by hand may not be."""
    return str(path if path.is_absolute() else Path.cwd() / path)


def as_sent(raw: str) -> str:
    """``raw`` printable: NULs and lone surrogates escaped (they would break the JSON)."""
    return raw.encode("utf-8", "backslashreplace").decode("utf-8").replace("\0", "\\0")


def refused(raw: str, access: Access, policy: SandboxPolicy) -> ToolResult:
    """A path the policy does not allow, named as the model sent it (never a server path)."""
    if access is Access.READ and policy.read_anywhere:
        reason = "is not readable in this session"
    else:
        reason = "is outside the workspace"
    return ToolResult(f"Permission denied: {as_sent(raw)} {reason}", is_error=True)


async def check_for_editor(
    raw: str, path: Path, access: Access, policy: SandboxPolicy
) -> ToolResult | None:
    """Refuse a path outside the policy before an editor is asked about it; creates nothing,
    and leaves every other failure (a file only the editor has) to the editor."""

    def run() -> None:
        with contextlib.suppress(OSError):
            check(Confinement.of(policy, access), absolute(path))

    try:
        await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    except PathRefused:
        return refused(raw, access, policy)
    except InvalidPath as exc:
        return ToolResult(f"Invalid path {as_sent(raw)}: {exc}", is_error=True)
    return None


def os_error(action: str, path: str, exc: OSError) -> ToolResult:
    """One line the model can act on, for the errors a file operation can expect; ``path`` is
    the name the model used (a tenant never sees where its workspace lives)."""
    if isinstance(exc, FileNotFoundError):
        message = f"File not found: {path}"
    elif isinstance(exc, IsADirectoryError):
        message = f"{path} is a directory, not a file"
    elif isinstance(exc, PermissionError):
        message = f"Permission denied: cannot {action} {path}"
    elif isinstance(exc, NotADirectoryError):
        message = f"Cannot {action} {path}: a parent of it is not a directory"
    else:
        message = f"Cannot {action} {path}: {exc.strerror or exc}"
    return ToolResult(message, is_error=True)


class ArgumentError(ClientError, ValueError):
    """An argument the model got wrong; its message goes back to the model."""


def required_str(arguments: dict[str, Any], name: str, *, allow_empty: bool = False) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not (value or allow_empty):
        kind = "a string" if allow_empty else "a non-empty string"
        raise ArgumentError(f"Missing '{name}' argument: {kind}")
    return value


def optional_positive_int(arguments: dict[str, Any], name: str) -> int | None:
    """A whole number >= 1 if given (JSON encoders may send 10 as 10.0)."""
    value = arguments.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(f"'{name}' must be a whole number >= 1")
    return value


def optional_bool(arguments: dict[str, Any], name: str) -> bool:
    value = arguments.get(name, False)
    if not isinstance(value, bool):
        raise ArgumentError(f"'{name}' must be true or false")
    return value


def optional_str(arguments: dict[str, Any], name: str) -> str | None:
    value = arguments.get(name)
    if value is not None and not isinstance(value, str):
        raise ArgumentError(f"'{name}' must be a string")
    return value or None


def error(message: str) -> ToolResult:
    return ToolResult(message, is_error=True)
