"""Choosing the provider from configuration."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tokenbank.chat.providers.base import AIProvider, ProviderNotConfigured
from tokenbank.chat.providers.gemini import DEFAULT_GEMINI_MODEL, GeminiProvider
from tokenbank.chat.providers.offline import OfflineProvider
from tokenbank.chat.providers.openai_compat import DEFAULT_OPENAI_BASE_URL, OpenAICompatProvider

ProviderName = Literal["offline", "gemini", "openai"]

# Local OpenAI-compatible servers (Ollama, vLLM, llama.cpp) ignore the key, but the
# SDK insists on one.
LOCAL_SERVER_API_KEY = "no-key-needed"


class ProviderSettings(BaseModel):
    """What `build_provider` needs; the application maps its settings onto this."""

    model_config = ConfigDict(frozen=True)

    provider: ProviderName | None = None
    """None: Gemini if a Gemini key is set, else OpenAI if a key or base URL is set,
    else the offline model."""
    gemini_api_key: str | None = None
    gemini_model: str = DEFAULT_GEMINI_MODEL
    gemini_base_url: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    timeout_s: float = Field(default=30.0, gt=0)
    """Deadline for a whole reply, streamed or not."""
    stream_idle_timeout_s: float | None = Field(default=None, gt=0)
    """Longest wait for the next streamed chunk; None means `timeout_s`."""


def chosen_provider(settings: ProviderSettings) -> ProviderName:
    """The provider `build_provider` will use for these settings."""
    if settings.provider is not None:
        return settings.provider
    if settings.gemini_api_key:
        return "gemini"
    if settings.openai_api_key or settings.openai_base_url:
        return "openai"
    return "offline"


def build_provider(settings: ProviderSettings) -> AIProvider:
    """The configured provider. Raises `ProviderNotConfigured` if its key is missing."""
    name = chosen_provider(settings)
    if name == "gemini":
        return _gemini(settings)
    if name == "openai":
        return _openai(settings)
    return OfflineProvider()


def _gemini(settings: ProviderSettings) -> GeminiProvider:
    api_key = settings.gemini_api_key
    if not api_key:
        if not settings.gemini_base_url:
            raise ProviderNotConfigured("AI_PROVIDER=gemini needs GEMINI_API_KEY")
        api_key = LOCAL_SERVER_API_KEY
    return GeminiProvider(
        api_key=api_key,
        model=settings.gemini_model,
        base_url=settings.gemini_base_url,
        timeout_s=settings.timeout_s,
        idle_timeout_s=settings.stream_idle_timeout_s,
    )


def _openai(settings: ProviderSettings) -> OpenAICompatProvider:
    api_key = settings.openai_api_key
    if not api_key:
        if not settings.openai_base_url:
            raise ProviderNotConfigured(
                "AI_PROVIDER=openai needs OPENAI_API_KEY, or OPENAI_BASE_URL for a local server"
            )
        api_key = LOCAL_SERVER_API_KEY
    return OpenAICompatProvider(
        api_key=api_key,
        model=settings.openai_model,
        base_url=settings.openai_base_url or DEFAULT_OPENAI_BASE_URL,
        timeout_s=settings.timeout_s,
        idle_timeout_s=settings.stream_idle_timeout_s,
    )
