"""Error types shared by every layer.

Every error's ``str()`` is one line a user can act on; faces print it as is and never a
traceback.
"""

from __future__ import annotations


class OpenheimError(Exception):
    """Base of all errors openheim reports to a user.

    ``public`` is the text for a remote client (an ACP client, a server tenant): the same line
    without what only the operator should see (the config's path, the server's folders). The
    full text is for the local user and the server log.
    """

    def __init__(self, message: str = "", *, public: str | None = None) -> None:
        super().__init__(message)
        self._public = public

    @property
    def public(self) -> str:
        return self._public if self._public is not None else str(self)


class ConfigError(OpenheimError):
    """The configuration is missing, malformed or names something that does not exist."""


class HistoryError(OpenheimError):
    """A conversation could not be stored or loaded."""


class ConversationNotFoundError(HistoryError):
    """No conversation is stored under a well-formed id."""


class SkillError(OpenheimError):
    """A requested skill is unknown or unreadable."""


class ImageError(OpenheimError):
    """An image that cannot be sent to a model: its type, its size, or too many of them."""


class WorkspaceError(OpenheimError):
    """A session's working folder lies outside the workspace it is confined to."""


class SessionLimitError(OpenheimError):
    """Opening one more session would exceed the configured limit."""


class ServerBusyError(OpenheimError):
    """The server is over its memory budget (``[server] max_rss_mb``): retry shortly."""

    def __init__(self) -> None:
        super().__init__("server busy: memory budget reached; retry in a few seconds")


class ProviderError(OpenheimError):
    """An LLM provider failed a request.

    ``retryable`` says whether the same request may succeed later (429, 5xx, network errors);
    ``retry_after`` is the delay the provider asked for, in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"{self.provider} " if self.provider else ""
        status = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{where}provider error: {status}{self.message}"


class ContextTooLong(ProviderError):
    """The provider refused a request for holding more tokens than the model's window.

    The agent loop answers it by compacting the conversation and retrying once, so a user
    sees it only when even the compacted request does not fit.
    """


class SandboxError(OpenheimError):
    """The sandbox asked for cannot confine tools on this machine."""


class PathError(OpenheimError):
    """A path a tool or a client named cannot be used: it leads outside the roots it is
    confined to, or no file can have that name. Defined where paths are resolved
    (``sandbox.paths``); the message names only the path as sent."""


class ClientError(OpenheimError):
    """A remote client sent something unusable or failed a request we made of it (a bad fs
    request, an editor that cannot read a buffer). ``message`` goes back to that client (or
    its model) as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
