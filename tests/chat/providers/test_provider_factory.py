"""Choosing and building the provider from settings."""

from __future__ import annotations

import pytest

from chat.providers.fake_ai_servers import FakeServer
from tokenbank.chat.providers import (
    AIProvider,
    ChatTurn,
    GeminiProvider,
    OfflineProvider,
    OpenAICompatProvider,
    ProviderName,
    ProviderNotConfigured,
    ProviderSettings,
    ProviderTimeout,
    build_provider,
)

HELLO = [ChatTurn("user", "Hello")]


async def build_and_close(settings: ProviderSettings) -> AIProvider:
    provider = build_provider(settings)
    await provider.aclose()
    return provider


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (ProviderSettings(), OfflineProvider),
        (ProviderSettings(gemini_api_key="gemini-test-key"), GeminiProvider),
        (ProviderSettings(openai_api_key="sk-test-local"), OpenAICompatProvider),
        (ProviderSettings(openai_base_url="http://127.0.0.1:11434/v1"), OpenAICompatProvider),
        (
            ProviderSettings(gemini_api_key="gemini-test-key", openai_api_key="sk-test-local"),
            GeminiProvider,
        ),
        (ProviderSettings(provider="offline", gemini_api_key="gemini-test-key"), OfflineProvider),
        (
            ProviderSettings(
                provider="openai", gemini_api_key="gemini-test-key", openai_api_key="sk-test"
            ),
            OpenAICompatProvider,
        ),
    ],
)
async def test_provider_is_chosen_from_the_settings(
    settings: ProviderSettings, expected: type[AIProvider]
) -> None:
    provider = await build_and_close(settings)

    assert isinstance(provider, expected)
    assert isinstance(provider, AIProvider)


@pytest.mark.anyio
async def test_models_come_from_the_settings_with_current_defaults() -> None:
    gemini = await build_and_close(ProviderSettings(gemini_api_key="k"))
    openai = await build_and_close(ProviderSettings(openai_api_key="k", openai_model="llama3.2"))

    assert gemini.model.startswith("gemini-") and "flash" in gemini.model
    assert openai.model == "llama3.2"
    assert ProviderSettings().openai_model == "gpt-4o-mini"


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_explicit_provider_without_its_key_is_refused(provider: ProviderName) -> None:
    with pytest.raises(ProviderNotConfigured):
        build_provider(ProviderSettings(provider=provider))


@pytest.mark.anyio
async def test_local_openai_server_needs_only_a_base_url(openai_server: FakeServer) -> None:
    settings = ProviderSettings(
        provider="openai", openai_base_url=f"{openai_server.url}/v1", openai_model="llama3.2"
    )
    provider = build_provider(settings)
    try:
        reply = await provider.complete(HELLO)
    finally:
        await provider.aclose()

    assert "Hello" in reply
    sent = openai_server.last_request()
    assert sent.body["model"] == "llama3.2"
    assert sent.headers["authorization"].startswith("Bearer ")


@pytest.mark.anyio
async def test_gemini_base_url_and_model_are_used(gemini_server: FakeServer) -> None:
    settings = ProviderSettings(
        gemini_api_key="gemini-test-key",
        gemini_base_url=gemini_server.url,
        gemini_model="gemini-configured",
    )
    provider = build_provider(settings)
    try:
        await provider.complete(HELLO)
    finally:
        await provider.aclose()

    assert gemini_server.last_request().path == "/v1beta/models/gemini-configured:generateContent"


@pytest.mark.anyio
async def test_timeout_setting_bounds_the_call(openai_server: FakeServer) -> None:
    settings = ProviderSettings(
        openai_api_key="sk-test-local",
        openai_base_url=f"{openai_server.url}/v1",
        openai_model="hang",
        timeout_s=0.5,
    )
    provider = build_provider(settings)
    try:
        with pytest.raises(ProviderTimeout):
            await provider.complete(HELLO)
    finally:
        await provider.aclose()


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ProviderSettings(timeout_s=0)
