"""AI providers: one small interface (`AIProvider`), chosen by configuration.

`build_provider(ProviderSettings(...))` returns the offline model, Gemini, or any
OpenAI-compatible server; `build_prompt` picks the turns to send.
"""

from tokenbank.chat.providers.base import (
    AIProvider,
    ChatTurn,
    EmptyReply,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    ProviderUnavailable,
    ReplyReport,
    Role,
)
from tokenbank.chat.providers.factory import (
    ProviderName,
    ProviderSettings,
    build_provider,
    chosen_provider,
)
from tokenbank.chat.providers.gemini import DEFAULT_GEMINI_MODEL, GeminiProvider
from tokenbank.chat.providers.offline import OFFLINE_LABEL, OfflineProvider, offline_reply
from tokenbank.chat.providers.openai_compat import DEFAULT_OPENAI_BASE_URL, OpenAICompatProvider
from tokenbank.chat.providers.prompt import build_prompt, history_budget

__all__ = [
    "AIProvider",
    "ChatTurn",
    "DEFAULT_GEMINI_MODEL",
    "DEFAULT_OPENAI_BASE_URL",
    "EmptyReply",
    "GeminiProvider",
    "OFFLINE_LABEL",
    "OfflineProvider",
    "OpenAICompatProvider",
    "ProviderError",
    "ProviderName",
    "ProviderNotConfigured",
    "ProviderSettings",
    "ProviderTimeout",
    "ProviderUnavailable",
    "ReplyReport",
    "Role",
    "build_prompt",
    "history_budget",
    "build_provider",
    "chosen_provider",
    "offline_reply",
]
