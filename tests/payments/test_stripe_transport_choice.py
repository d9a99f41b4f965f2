"""Which HTTP client the Stripe gateway uses: the lean transport, unless the environment
sends the API's host through a proxy (which only the SDK's httpx transport honours)."""

from __future__ import annotations

import pytest

from tokenbank.payments.stripe_client import AsyncHTTPXClient, stripe_transport
from tokenbank.payments.stripe_http import LeanHTTPClient

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
               "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def test_without_a_proxy_the_lean_transport_talks_to_stripe() -> None:
    assert isinstance(stripe_transport(None), LeanHTTPClient)
    assert isinstance(stripe_transport("http://127.0.0.1:12111"), LeanHTTPClient)


def test_a_proxy_in_the_environment_keeps_the_sdk_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert isinstance(stripe_transport(None), AsyncHTTPXClient)


def test_a_host_the_proxy_skips_uses_the_lean_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert isinstance(stripe_transport("http://127.0.0.1:12111"), LeanHTTPClient)
    assert isinstance(stripe_transport(None), AsyncHTTPXClient)
