"""Immutable configuration objects."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path

import attrs

from openheim.config.sandbox_settings import SandboxSettings
from openheim.foundation.models import ReasoningLevel, Usage
from openheim.permissions import PermissionPolicy


class ProviderKind(enum.StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    OPENAI_COMPATIBLE = "openai_compatible"
    #: OpenAI's Responses API (``/responses``), where its newest reasoning models are served.
    OPENAI_RESPONSES = "openai_responses"

    @classmethod
    def infer(cls, provider_name: str) -> ProviderKind:
        """A provider named after a vendor speaks its API; any other name is OpenAI-compatible."""
        try:
            return cls(provider_name)
        except ValueError:
            return cls.OPENAI_COMPATIBLE


@attrs.frozen
class ModelPrice:
    """US dollars per million tokens. Cache prices default to the input price."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        fresh = max(usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens, 0)
        cache_read = self.input if self.cache_read is None else self.cache_read
        cache_write = self.input if self.cache_write is None else self.cache_write
        total = (
            fresh * self.input
            + usage.cache_read_tokens * cache_read
            + usage.cache_write_tokens * cache_write
            + usage.output_tokens * self.output
        )
        return total / 1_000_000


#: Bounds on one reply's stream: its bytes (what reaches memory and the history) and its
#: duration (a stream that trickles forever holds a turn slot and a connection).
DEFAULT_MAX_REPLY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_REPLY_SECS = 600.0


@attrs.frozen
class ProviderConfig:
    name: str
    kind: ProviderKind
    api_base: str
    default_model: str
    models: tuple[str, ...]
    env_var: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    timeout_secs: float = 120.0
    connect_timeout_secs: float = 10.0
    max_tokens: int | None = None
    max_retries: int = 4
    retry_initial_delay_secs: float = 1.0
    retry_max_delay_secs: float = 60.0
    max_in_flight: int | None = None
    requests_per_minute: float | None = None
    #: Local models often write a tool call as JSON text; hosted APIs send real tool calls.
    recover_text_tool_calls: bool = attrs.field(
        default=attrs.Factory(
            lambda self: self.kind is ProviderKind.OPENAI_COMPATIBLE, takes_self=True
        )
    )
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    max_reply_secs: float = DEFAULT_MAX_REPLY_SECS
    prices: Mapping[str, ModelPrice] = attrs.field(factory=dict)
    #: Tokens a request may hold (prompt plus reply); None: known model families' defaults.
    context_window: int | None = None
    #: Per-model windows (``[providers.NAME.context_windows] "model" = N``), over the above.
    context_windows: Mapping[str, int] = attrs.field(factory=dict)
    #: Compact the conversation when a request would fill this share of the window (less
    #: the reply's ``max_tokens``).
    compact_at: float = 0.8
    #: Whether this provider's models take images: unset = by model family
    #: (``openheim.providers.vision``), true/false = every model.
    vision: bool | None = None
    #: Models that take images whatever ``vision`` says (a local ``llava``, say).
    vision_models: tuple[str, ...] = ()
    #: How hard this provider's models think before answering; ``reasoning_by_model`` wins
    #: for the models it names (only reasoning models accept a level other than ``off``).
    reasoning: ReasoningLevel = ReasoningLevel.OFF
    reasoning_by_model: Mapping[str, ReasoningLevel] = attrs.field(factory=dict)

    def reasoning_for(self, model: str) -> ReasoningLevel:
        return self.reasoning_by_model.get(model, self.reasoning)

    @property
    def key_required(self) -> bool:
        """Local OpenAI-compatible servers (Ollama, vLLM, LM Studio) usually take no key."""
        return self.kind is not ProviderKind.OPENAI_COMPATIBLE


@attrs.frozen
class McpServerConfig:
    """One ``[mcp_servers.NAME]``: run by an actor in ``openheim.mcp``, tools as NAME__TOOL."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    enabled: bool = True
    startup_timeout_secs: float = 30.0
    tool_timeout_secs: float = 120.0

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


@attrs.frozen
class ToolsConfig:
    command_timeout_secs: float = 120.0
    output_limit_bytes: int = 64 * 1024
    read_limit_bytes: int = 256 * 1024


class ClientMcpPolicy(enum.StrEnum):
    """Which MCP servers an ACP client may start for its session (``mcpServers``).

    A stdio server is a command run on the server's host and an http one makes the server
    send requests wherever the client says: fine for one local user, not for tenants.
    """

    ALL = "all"
    HTTP = "http"
    NONE = "none"


class DisconnectPolicy(enum.StrEnum):
    """What happens to a client's running turns when its WebSocket drops."""

    KEEP = "keep"
    CANCEL = "cancel"


@attrs.frozen
class ServerConfig:
    """``[server]``: what ``openheim serve`` allows, per tenant and per connection.

    ``tokens`` maps a bearer token to a tenant name; ``tokens_file`` is read by ``serve`` at
    start (a TOML file with a ``[tokens]`` table), so ``run`` never needs it.
    ``workspace_root`` None means the folder ``serve`` starts in.
    """

    workspace_root: Path | None = None
    tokens: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    tokens_file: Path | None = None
    disconnect_grace_secs: float = 300.0
    slow_client_timeout_secs: float = 10.0
    on_disconnect: DisconnectPolicy = DisconnectPolicy.KEEP
    max_sessions_per_tenant: int = 100
    max_turns_per_tenant: int = 8
    max_frame_bytes: int = 4 * 1024 * 1024
    allowed_origins: tuple[str, ...] = ()
    #: Bearer token for ``GET /metrics`` when tenant tokens are on (metrics span tenants, so
    #: no tenant's token opens them); without tokens ``/metrics`` is open like the rest.
    metrics_token: str | None = attrs.field(default=None, repr=False)
    #: None: ``all`` without tokens (one local user), ``none`` with tokens.
    client_mcp_servers: ClientMcpPolicy | None = None
    #: Bytes a tenant's workspace may hold (with tokens); 0 means no quota.
    max_workspace_bytes: int = 1024 * 1024 * 1024
    #: ``web_fetch`` for tenants: the server itself then fetches URLs a tenant's model names
    #: (which may reach services only the server's network sees); off unless set.
    allow_web_fetch: bool = False
    #: Tenants' sessions compact at this share of the window, whatever the providers say;
    #: None: each provider's ``compact_at``.
    compact_at: float | None = None
    #: How long a session's lease on the shared store lasts unless renewed (every third of
    #: it): after a replica dies, another may take its sessions after at most this long.
    session_lease_secs: float = 30.0
    #: This process's name in the lease holder ids the logs show; None: host and pid.
    replica_name: str | None = None
    #: A session asked nothing for this long gives up its actor task (it stays open and
    #: starts again on its next request): idle sessions then cost only their data.
    session_idle_secs: float = 60.0
    #: Memory budget (resident set, MiB): above it new sessions and prompts are refused as
    #: busy and idle sessions are saved and closed; None: no budget.
    max_rss_mb: int | None = None


@attrs.frozen
class StoreConfig:
    """``[store]``: where conversations live. No URL: JSON files under ``history/``.

    ``url`` may be given in the environment instead (``url_env``, default
    ``OPENHEIM_STORE_URL``), which keeps the database password out of the file.
    """

    url: str | None = attrs.field(default=None, repr=False)
    url_env: str = "OPENHEIM_STORE_URL"
    pool_size: int = 10


@attrs.frozen
class Config:
    path: Path
    default_provider: str
    providers: Mapping[str, ProviderConfig]
    max_iterations: int = 10
    system_prompt: str | None = None
    mcp_servers: Mapping[str, McpServerConfig] = attrs.field(factory=dict)
    tools: ToolsConfig = attrs.field(factory=ToolsConfig)
    permissions: PermissionPolicy = attrs.field(factory=PermissionPolicy)
    server: ServerConfig = attrs.field(factory=ServerConfig)
    store: StoreConfig = attrs.field(factory=StoreConfig)
    sandbox: SandboxSettings = attrs.field(factory=SandboxSettings)
