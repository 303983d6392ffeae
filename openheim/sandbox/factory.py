"""One process's sandboxing: the backend chosen at start, and each session's policy.

Built once by ``open_runtime``. What a session's commands may reach depends on who the session
belongs to: a server tenant gets the tenant policy, everyone else the local one (see
``policy``). The secrets stripped from a local environment are gathered here, from the config
and the environment, because only here are they all known at once.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import trio

from openheim.config.model import Config
from openheim.config.paths import Paths
from openheim.config.sandbox_settings import SandboxMode, SandboxSettings
from openheim.foundation.errors import ConfigError
from openheim.sandbox.environment import local_env, tenant_env
from openheim.sandbox.policy import SandboxPolicy, local_policy, tenant_policy
from openheim.sandbox.quota import WorkspaceQuota
from openheim.sandbox.sandbox import Sandbox
from openheim.sandbox.select import Choice, choose

#: Overrides ``[sandbox] mode``; ``--sandbox MODE`` on every face sets it.
MODE_ENV_VAR = "OPENHEIM_SANDBOX"


@attrs.frozen(eq=False)
class Sandboxing:
    choice: Choice
    settings: SandboxSettings
    #: The server's own environment: tenants' commands take an allowlist of it.
    server_env: Mapping[str, str] = attrs.field(repr=False)
    #: The local user's environment with every known secret removed.
    stripped_env: Mapping[str, str] = attrs.field(repr=False)
    #: The server's own files (config, tokens): never visible to a tool.
    private_files: tuple[Path, ...] = ()

    @property
    def confines(self) -> bool:
        """Whether a backend (not ``none``) confines commands."""
        return self.choice.name != "none"

    def describe(self, *, tenants: bool) -> dict[str, object]:
        """For ``/api/config``, doctor and the ``serve`` banner: no paths, no secrets."""
        choice = self.choice
        policy = "tenant" if tenants else "local"
        return {
            "backend": choice.name,
            "mode": choice.mode.value,
            "policy": policy,
            "network": self.settings.network,
            "notes": list(choice.notes),
            "summary": f"{choice.name} ({policy} policy, mode {choice.mode.value})",
        }

    def for_session(
        self,
        roots: Sequence[Path],
        *,
        tenant: bool,
        slots: trio.Semaphore | None = None,
        quota: WorkspaceQuota | None = None,
    ) -> Sandbox:
        """The sandbox of a session working in ``roots`` (its cwd first)."""
        return Sandbox(self.choice.backend, self.policy(roots, tenant=tenant), slots, quota)

    def policy(self, roots: Sequence[Path], *, tenant: bool) -> SandboxPolicy:
        settings = self.settings
        if tenant:
            env = tenant_env(
                self.server_env, home=Path(roots[0]), passthrough=settings.env_passthrough
            )
            return tenant_policy(roots, settings, env, hidden=self.private_files)
        if self.choice.mode is SandboxMode.NONE:
            # Asked for no sandbox: today's reach, but still no secrets in the environment.
            return local_policy(
                (Path("/"),), settings, self.stripped_env, hidden=self.private_files
            )
        return local_policy(
            roots,
            settings,
            self.stripped_env,
            temp_dirs=_temp_dirs(self.server_env),
            hidden=self.private_files,
        )


async def open_sandboxing(
    config: Config,
    paths: Paths,
    env: Mapping[str, str],
    *,
    store_url: str | None = None,
) -> Sandboxing:
    """Probe and choose the backend (in a worker thread: probes start processes)."""
    settings = config.sandbox
    mode = sandbox_mode(env, settings)
    choice = await trio.to_thread.run_sync(choose, mode)
    values, names = known_secrets(config, env, store_url=store_url)
    stripped = local_env(
        env,
        secrets=values,
        secret_names=names,
        exclude=settings.env_exclude,
        passthrough=settings.env_passthrough,
    )
    private = [config.path, paths.config_file]
    if config.server.tokens_file is not None:
        private.append(config.server.tokens_file)
    return Sandboxing(
        choice=choice,
        settings=settings,
        server_env=dict(env),
        stripped_env=stripped,
        private_files=tuple(dict.fromkeys(private)),
    )


def sandbox_mode(env: Mapping[str, str], settings: SandboxSettings) -> SandboxMode:
    text = env.get(MODE_ENV_VAR, "").strip()
    if not text:
        return settings.mode
    try:
        return SandboxMode(text)
    except ValueError:
        modes = ", ".join(mode.value for mode in SandboxMode)
        raise ConfigError(
            f"{MODE_ENV_VAR}={text!r} is not a sandbox mode; fix: use one of {modes}"
        ) from None


def known_secrets(
    config: Config, env: Mapping[str, str], *, store_url: str | None = None
) -> tuple[list[str], list[str]]:
    """(secret values, names of variables holding secrets) that openheim itself knows.

    The values are those masked in logs, except MCP servers' env values (settings like
    ``DEBUG=1`` as often as secrets, and they would strip the user's own variables), plus the
    store's password alone and the tokens of ``tokens_file``.
    """
    from openheim.config.secrets import config_secrets

    settings = {value for server in config.mcp_servers.values() for value in server.env.values()}
    values = [value for value in config_secrets(config, env) if value not in settings]
    values += _file_tokens(config)
    for url in (store_url, config.store.url, env.get(config.store.url_env)):
        password = _password(url)
        if password:
            values.append(password)
    names = [provider.env_var for provider in config.providers.values() if provider.env_var]
    names += [config.store.url_env, "OPENHEIM_METRICS_TOKEN"]
    return values, names


def _file_tokens(config: Config) -> list[str]:
    from openheim.config.load import read_tokens

    if config.server.tokens_file is None:
        return []
    with contextlib.suppress(ConfigError, OSError):
        return list(read_tokens(config))
    return []


def _password(url: str | None) -> str | None:
    if not url:
        return None
    with contextlib.suppress(ValueError):
        return urlsplit(url).password
    return None


def _temp_dirs(env: Mapping[str, str]) -> list[Path]:
    """The host's temp folders, writable in the local policy."""
    folders = {Path(tempfile.gettempdir()), Path("/tmp")}
    if env.get("TMPDIR"):
        folders.add(Path(env["TMPDIR"]))
    return [folder for folder in folders if os.path.isdir(folder)]
