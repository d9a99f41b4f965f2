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
- `model` (default: the provider's own) and `max_tokens` (default: the provider's own
  limit) are passed on as asked. A `ReplyReport` given as `report` is filled in as the
  reply ends: the usage the provider reported (if it did) and its finish reason, even
  when the call then raises (a reply withheld part way by a content filter).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

from tokenbank.errors import ConfigError

Role = Literal["user", "assistant", "system"]
#: A vendor's own finish reason (an enum member, a string).
F = TypeVar("F")


class ChatTurn(NamedTuple):
    """One message of a conversation, in the provider-neutral shape.

    A named tuple rather than a frozen dataclass: a reply's history makes up to a hundred
    of these per request, and a tuple is made from a database row in one C call.
    """

    role: Role
    content: str


@dataclass
class ReplyReport:
    """What a provider says about a reply as it ends (filled in by the provider).

    Usage is None unless the provider reported it; ``finish_reason`` is ``stop``,
    ``length`` (the output limit) or ``content_filter`` (withheld part way), else None.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    finish_reason: str | None = None

    @property
    def has_usage(self) -> bool:
        return self.input_tokens is not None and self.output_tokens is not None


@runtime_checkable
class AIProvider(Protocol):
    """A source of AI replies, chosen by configuration (see `build_provider`)."""

    name: str
    model: str
    is_offline: bool

    async def complete(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        report: ReplyReport | None = None,
    ) -> str:
        """The whole reply to `turns` (chronological, the last one is the user's)."""
        ...

    def stream(
        self,
        turns: Sequence[ChatTurn],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        report: ReplyReport | None = None,
    ) -> AsyncIterator[str]:
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

    @classmethod
    def for_status(cls, provider: str, status_code: int, message: str) -> ProviderUnavailable:
        """The failure for an HTTP error status, its reason from `reason_for_status`."""
        return cls(provider, reason_for_status(status_code), message, status_code=status_code)


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


def check_reply_end(
    provider: str, finish_reason: str | None, produced: bool, *, detail: str | None = None
) -> None:
    """Raise unless a reply ended usable: finished (``finish_reason`` as in `ReplyReport`:
    None when the provider never said the reply was done), not withheld part way
    (``content_filter``), and with text. ``detail`` says more of a withheld reply."""
    if finish_reason is None:
        # The body ended without the final chunk: the reply may be cut anywhere.
        raise ProviderUnavailable(provider, "stream_interrupted", "ended before finishing")
    if finish_reason == "content_filter":
        why = f": {detail}" if detail else ""
        raise EmptyReply(provider, "blocked", f"reply withheld by the content filter{why}")
    if not produced:
        raise EmptyReply(provider, "empty", "reply has no text")


class StreamedReply(Generic[F]):
    """One streamed reply as every remote provider follows it.

    The provider sets ``produced`` once text came and hands each chunk's own finish
    reason to `finished`: the last one given wins, and ``report.finish_reason`` follows
    it as it comes (through ``label``, the provider's mapping to ``stop``, ``length`` or
    ``content_filter``, None for None), so a reply that then fails still reports how it ended. `end`
    raises unless the stream ended as a usable reply. ``report`` is the caller's, or a
    private one when none was given (usage is then read and dropped).
    """

    __slots__ = ("provider", "report", "finish", "produced", "_label")

    def __init__(
        self, provider: str, report: ReplyReport | None, label: Callable[[F | None], str | None]
    ) -> None:
        self.provider = provider
        self.report = report if report is not None else ReplyReport()
        self.finish: F | None = None
        self.produced = False
        self._label = label

    def finished(self, reason: F | None) -> None:
        """A chunk's finish reason; an absent one (most chunks') keeps the last."""
        if reason:
            self.finish = reason
        self.report.finish_reason = self._label(self.finish)

    def end(self, *, detail: str | None = None) -> None:
        check_reply_end(self.provider, self._label(self.finish), self.produced, detail=detail)
