"""Masking secrets in texts that came from elsewhere (provider error bodies)."""

from __future__ import annotations

from openheim.foundation.redact import REDACTED, mask_secrets


def test_known_secrets_are_masked_longest_first() -> None:
    text = "Incorrect API key provided: my-own-key-123 (prefix my-own-key)."
    assert mask_secrets(text, ["my-own-key-123", "my-own-key", "short"]) == (
        f"Incorrect API key provided: {REDACTED} (prefix {REDACTED})."
    )


def test_key_shaped_words_are_masked_even_when_unknown() -> None:
    for key in (
        "sk-proj-AbCdEf0123456789xyz",
        "ghp_0123456789abcdefABCDEF",
        "AIzaSyA0123456789abcdefghij",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
    ):
        assert mask_secrets(f'{{"error": "bad key {key}"}}') == f'{{"error": "bad key {REDACTED}"}}'


def test_ordinary_text_and_provider_masked_keys_stay() -> None:
    for text in (
        "model gpt-4.1-mini not found",
        "Incorrect API key provided: sk-proj-****wxyz",
        "task-runner skipped",
        "rate limit: 500 requests per minute",
    ):
        assert mask_secrets(text, ["abc"]) == text
