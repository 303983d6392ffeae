"""A plain-http provider's client loads no certificates, and never trusts a TLS peer."""

from __future__ import annotations

import ssl

import pytest

from openheim.providers.tls import client_verify


@pytest.mark.parametrize("api_base", ["https://api.example.com/v1", "HTTPS://x/v1"])
def test_https_providers_keep_httpx_verification(api_base: str) -> None:
    assert client_verify(api_base, {}) is True


def test_a_plain_http_provider_gets_a_context_without_certificates_that_still_verifies() -> None:
    context = client_verify("http://127.0.0.1:8080/v1", {"http": "http://proxy:3128"})
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0


def test_an_https_proxy_in_the_environment_keeps_httpx_verification() -> None:
    assert client_verify("http://127.0.0.1:8080/v1", {"all": "https://proxy:3128"}) is True
