"""A sandboxed process's environment, built from the server's (pure functions).

A tenant's command gets an allowlist: nothing of the server's environment reaches it unless
named here, so a provider key exported for the server can never be printed by ``env``. A local
user's command keeps the user's environment (their tools need it) minus every secret openheim
knows and minus names that look like secrets; ``env_passthrough`` keeps one on purpose.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from pathlib import Path

#: Settings that make interactive programs give up or proceed instead of waiting for input:
#: there is no terminal and stdin is /dev/null; these cover pagers, editors, credential prompts
#: and installers that ask questions.
NONINTERACTIVE_ENV: Mapping[str, str] = {
    "GIT_TERMINAL_PROMPT": "0",
    "GCM_INTERACTIVE": "never",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "MANPAGER": "cat",
    "SYSTEMD_PAGER": "cat",
    "GIT_EDITOR": "true",
    "EDITOR": "true",
    "VISUAL": "true",
    "SSH_ASKPASS_REQUIRE": "never",
    "DEBIAN_FRONTEND": "noninteractive",
    "PIP_NO_INPUT": "1",
    "TERM": "dumb",
    "NO_COLOR": "1",
    "PYTHONUNBUFFERED": "1",
}

#: What a tenant's command inherits from the server, by name; ``LC_*`` by prefix.
TENANT_ALLOWLIST = ("PATH", "LANG", "LANGUAGE", "TZ")
#: A secret this long found inside a value (``https://user:TOKEN@host``) strips the variable;
#: shorter ones only when they are the whole value, or ``PATH`` could match a short password.
_MIN_EMBEDDED_SECRET = 12
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


def tenant_env(
    server_env: Mapping[str, str],
    *,
    home: Path,
    tmp: str = "/tmp",
    passthrough: Iterable[str] = (),
) -> dict[str, str]:
    """The allowlisted environment of a tenant's command.

    ``passthrough`` names variables the operator chose to share with tenants.
    """
    keep = set(TENANT_ALLOWLIST) | set(passthrough)
    env = {
        name: value for name, value in server_env.items() if name in keep or name.startswith("LC_")
    }
    env.setdefault("PATH", _DEFAULT_PATH)
    env.update(NONINTERACTIVE_ENV)
    env.update({"HOME": str(home), "TMPDIR": tmp, "USER": "openheim", "LOGNAME": "openheim"})
    return env


def local_env(
    user_env: Mapping[str, str],
    *,
    secrets: Iterable[str],
    secret_names: Iterable[str] = (),
    exclude: Iterable[str] = (),
    passthrough: Iterable[str] = (),
) -> dict[str, str]:
    """The user's environment without secrets, made non-interactive.

    Dropped: variables named in ``secret_names`` (each provider's ``env_var``, the store URL's
    variable), variables whose value is one of ``secrets`` (keys, tokens, passwords openheim
    read) or contains a long one (a URL around a token), and names matching an ``exclude``
    glob. ``passthrough`` names win over all three.
    """
    exact = set(secrets)
    values = [secret for secret in exact if len(secret) >= _MIN_EMBEDDED_SECRET]
    names = set(secret_names)
    patterns = tuple(exclude)
    kept = set(passthrough)
    env: dict[str, str] = {}
    for name, value in user_env.items():
        if name not in kept and (
            name in names
            or value in exact
            or any(secret in value for secret in values)
            or any(fnmatch.fnmatchcase(name.upper(), pattern.upper()) for pattern in patterns)
        ):
            continue
        env[name] = value
    env.update(NONINTERACTIVE_ENV)
    return env
