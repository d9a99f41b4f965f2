"""The one interface every AI provider implements, and the errors it may raise.

Guarantees (every provider):
- `complete` returns non-empty text or raises a `ProviderError`; it never returns a
  canned or fallback reply, so a caller may charge for whatever it returns.
- `stream` yields non-empty text chunks; it ends normally only when the provider said
  the reply is finished. Any failure, including one after some chunks, raises a
  `ProviderError`, so a caller must charge only when the iteration ended normally.
- No exception from a vendor SDK escapes: each is mapped to a `ProviderError` subclass,
  chained with `from` so the cause stays in the logs.
- Each call has a deadline; a hung server ends in `ProviderTimeout`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from tokenbank.errors import ConfigError

Role = Literal["user", "assistant", "system"]


class ChatTurn(NamedTuple):
    """One message of a conversation, in the provider-neutral shape.

    A named tuple rather than a frozen dataclass: a reply's history makes up to a hundred
    of these per request, and a tuple is made from a database row in one C call.
    """

    role: Role
    content: str


@runtime_checkable
class AIProvider(Protocol):
    """A source of AI replies, chosen by configuration (see `build_provider`)."""

    name: str
    model: str
    is_offline: bool

    async def complete(self, turns: Sequence[ChatTurn]) -> str:
        """The whole reply to `turns` (chronological, the last one is the user's)."""
        ...

    def stream(self, turns: Sequence[ChatTurn]) -> AsyncIterator[str]:
        """The reply to `turns` as text chunks that join to the whole reply."""
        ...

    async def aclose(self) -> None:
        """Release network connections; the provider must not be used afterwards."""
        ...


class ProviderError(Exception):
    """The provider produced no usable reply; nothing may be charged for it.

    `reason` is a stable machine code (for logs and metrics), never shown as prose.
    """

    default_reason = "provider_error"

    def __init__(
        self,
        provider: str,
        reason: str | None = None,
        message: str | None = None,
        *,
        status_code: int | None = None,
    ) -> None:
        self.provider = provider
        self.reason = reason or self.default_reason
        self.status_code = status_code
        detail = f": {message}" if message else ""
        super().__init__(f"{provider}: {self.reason}{detail}")


class ProviderTimeout(ProviderError):
    """The provider did not answer (or stopped streaming) within the deadline."""

    default_reason = "timeout"


class ProviderUnavailable(ProviderError):
    """The provider failed: network, 5xx, auth, rate limit, bad request or bad response."""

    default_reason = "unavailable"


class EmptyReply(ProviderError):
    """The provider answered but with nothing usable (empty, no candidates, blocked)."""

    default_reason = "empty"


class ProviderNotConfigured(ConfigError, ValueError):
    """The settings ask for a provider whose required key or URL is missing."""


def reason_for_status(status_code: int) -> str:
    """The machine reason for an HTTP error status from a provider."""
    if status_code in (401, 403):
        return "auth_failed"
    if status_code == 429:
        return "rate_limited"
    if status_code == 404:
        return "not_found"
    if status_code >= 500:
        return "server_error"
    return "rejected"
