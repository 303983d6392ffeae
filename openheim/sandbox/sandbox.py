"""The one way tools start processes: a backend enforcing a session's policy.

A ``Backend`` turns (policy, argv, cwd) into a ``Launch``: the argv that really runs, its
environment, and how to stop its whole tree. ``Sandbox`` pairs a backend with one session's
policy and the tenant's cap on commands running at once; tools receive it in their
``ToolContext`` and never call ``open_process`` themselves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import attrs
import trio

from openheim.sandbox.environment import NONINTERACTIVE_ENV
from openheim.sandbox.limits import limit_argv
from openheim.sandbox.policy import SandboxPolicy
from openheim.sandbox.quota import WorkspaceQuota


@attrs.frozen
class Launch:
    """One command, ready to start."""

    argv: list[str]
    env: dict[str, str] = attrs.field(repr=False)
    #: The leader is a supervisor that ends the command's whole tree on SIGTERM (the landlock
    #: backend's reaper); other backends are stopped by SIGKILL to the process group.
    supervised: bool = False
    #: A private temp folder made for this command; removed after it ends.
    temp: Path | None = None

    def discard(self) -> None:
        """Remove what ``prepare`` made for this command (blocking; small)."""
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)


class Backend(Protocol):
    """How a policy is enforced: ``none``, ``bwrap`` or ``landlock``."""

    @property
    def name(self) -> str: ...

    def prepare(
        self, policy: SandboxPolicy, argv: Sequence[str], cwd: Path, env: Mapping[str, str]
    ) -> Launch: ...


@attrs.frozen
class NoBackend:
    """Today's behaviour: the command runs as is (its environment is still the policy's)."""

    name: str = "none"

    def prepare(
        self, policy: SandboxPolicy, argv: Sequence[str], cwd: Path, env: Mapping[str, str]
    ) -> Launch:
        return Launch([*limit_argv(policy.limits), *argv], dict(env))


@attrs.frozen(eq=False)
class Sandbox:
    """A backend plus one session's policy; shared by that session's tools."""

    backend: Backend
    policy: SandboxPolicy
    #: The tenant's cap on commands at once; None means no cap.
    slots: trio.Semaphore | None = None
    #: The tenant's workspace quota; None means none.
    quota: WorkspaceQuota | None = None

    @property
    def name(self) -> str:
        return self.backend.name

    def prepare(self, argv: Sequence[str], cwd: Path, extra_env: Mapping[str, str]) -> Launch:
        """The launch of ``argv`` in ``cwd``: the policy's environment plus ``extra_env``."""
        return self.backend.prepare(self.policy, argv, cwd, {**self.policy.env, **extra_env})


def unconfined() -> Sandbox:
    """No confinement and the process's own environment: a ``ToolContext`` made by hand (a
    library user's custom tool, a test) behaves as before sandboxing existed."""
    root = Path("/")
    policy = SandboxPolicy(
        writable=(root,),
        readable=(),
        read_anywhere=True,
        hidden=(),
        private_tmp=False,
        env={**os.environ, **NONINTERACTIVE_ENV},
    )
    return Sandbox(NoBackend(), policy)
