"""The client's side of the files: what it offers (``fs`` capabilities), and the file tools'
``FileAccess`` through its ``fs/*`` methods, so edits land in the editor's buffers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from openheim.acp.codec import RpcError
from openheim.tools.base import FileAccessError

#: Ask the client ``method`` with ``params`` on behalf of session ``tag``; raises ``RpcError``.
Request = Callable[[str, dict[str, Any], str], Awaitable[Any]]


@attrs.frozen
class ClientCapabilities:
    read_text_file: bool = False
    write_text_file: bool = False

    @classmethod
    def parse(cls, value: Any) -> ClientCapabilities:
        fs = value.get("fs") if isinstance(value, dict) else None
        if not isinstance(fs, dict):
            return cls()
        return cls(fs.get("readTextFile") is True, fs.get("writeTextFile") is True)

    def files_for(self, request: Request, session_id: str, timeout: float) -> ClientFiles | None:
        """File access through this client for one session; None when it offers no ``fs``."""
        if not (self.read_text_file or self.write_text_file):
            return None
        return ClientFiles(request, session_id, self.read_text_file, self.write_text_file, timeout)


@attrs.frozen
class ClientFiles:
    """``FileAccess`` through the client's ``fs/*`` methods (its editor buffers)."""

    request: Request
    session_id: str
    read: bool
    write: bool
    #: A silent client fails the tool call after this long.
    timeout: float

    async def read_text(self, path: Path, line: int | None, limit: int | None) -> str:
        if not self.read:
            raise NotImplementedError
        params: dict[str, Any] = {"sessionId": self.session_id, "path": str(path)}
        if line is not None:
            params["line"] = line
        if limit is not None:
            params["limit"] = limit
        result = await self._call("fs/read_text_file", params)
        content = result.get("content") if isinstance(result, dict) else None
        if not isinstance(content, str):
            raise FileAccessError("the client's answer to fs/read_text_file has no text content")
        return content

    async def write_text(self, path: Path, content: str) -> None:
        if not self.write:
            raise NotImplementedError
        params = {"sessionId": self.session_id, "path": str(path), "content": content}
        await self._call("fs/write_text_file", params)

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            with trio.fail_after(self.timeout):
                return await self.request(method, params, self.session_id)
        except trio.TooSlowError:
            raise FileAccessError(
                f"the client did not answer {method} within {self.timeout:g} s"
            ) from None
        except RpcError as exc:
            raise FileAccessError(f"the client answered {method} with: {exc.message}") from None
