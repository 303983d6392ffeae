"""Redaction for anything shown to a client: URLs, command lines, key-shaped strings.

Used by the REST views and by MCP status rows; kept free of the web stack so both can use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"
#: Query parameters whose values are shown: they select an API version, never a secret.
_SAFE_QUERY = frozenset({"api-version", "api_version", "version", "alt"})
_SECRET_NAME = re.compile(
    r"key|token|secret|passw|pwd|auth|credential|bearer|cookie|signature|private", re.I
)
_KNOWN_KEY = re.compile(
    r"^(sk|pk|rk|ghp|gho|ghs|ghu|ghr|github_pat|glpat|xox[abprs]|AIza|ya29|hf|eyJ)[-_A-Za-z0-9.]{12,}$"
)
#: A key-shaped word inside free text (an error body echoing what it was sent).
_KEY_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9_-])(?:(?:sk|pk|rk|ghp|gho|ghs|ghu|ghr|github_pat|glpat|hf|xox[abprs])[-_]"
    r"|AIza|ya29\.|eyJ)[A-Za-z0-9._-]{12,}"
)
#: Shorter "secrets" would mask ordinary words.
_MIN_MASKED = 8
_LONG_TOKEN = re.compile(r"^[A-Za-z0-9+_=.-]{32,}$")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def strip_url_credentials(url: str) -> str:
    """The URL without userinfo or fragment; query values redacted unless known harmless."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    pairs = []
    for piece in parts.query.split("&") if parts.query else ():
        name, eq, _ = piece.partition("=")
        pairs.append(piece if name.lower() in _SAFE_QUERY or not eq else f"{name}={REDACTED}")
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), ""))


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret, and every word shaped like a key, replaced: for error
    texts that came from elsewhere (a provider's error body echoing the key it was sent)."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_MASKED}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _KEY_IN_TEXT.sub(REDACTED, text)


def _looks_like_key(value: str) -> bool:
    if _KNOWN_KEY.match(value):
        return True
    return bool(
        _LONG_TOKEN.match(value)
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
    )


def _redact_value(value: str) -> str:
    name, eq, _ = value.partition("=")
    if eq and _ENV_ASSIGNMENT.match(name) and _SECRET_NAME.search(name):
        return f"{name}={REDACTED}"
    if "://" in value:
        return strip_url_credentials(value)
    return REDACTED if _looks_like_key(value) else value


def redact_args(args: tuple[str, ...] | list[str]) -> list[str]:
    """Command-line arguments with anything that looks secret replaced (see module doc)."""
    redacted: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
        elif arg.startswith("-") and len(arg) > 1:
            flag, eq, value = arg.partition("=")
            if _SECRET_NAME.search(flag):
                redacted.append(f"{flag}={REDACTED}" if eq else arg)
                hide_next = not eq
            else:
                redacted.append(f"{flag}={_redact_value(value)}" if eq else arg)
        else:
            redacted.append(_redact_value(arg))
    return redacted
