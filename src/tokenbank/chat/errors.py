"""The chat domain's typed errors, each named after the rule it guards."""

from __future__ import annotations

from tokenbank.chat.providers import EmptyReply, ProviderError, ProviderTimeout
from tokenbank.errors import AppError, ConfigError
from tokenbank.errors import IdempotencyKeyReused as IdempotencyKeyReused  # one class, every domain


class ChatError(AppError):
    """Base of every chat rule violation."""


class ChatNotFound(ChatError, status=404, code="chat_not_found", message="No such chat."):
    """Only the owner sees or uses a chat: someone else's is reported as unknown."""


class MessageNotFound(ChatError, status=404, code="message_not_found", message="No such message."):
    """Only the owner's messages can be acted on: someone else's is reported as unknown."""


class ReplyNotRefundable(
    ChatError,
    status=409,
    code="reply_not_refundable",
    message="Only an AI reply that cost tokens can be refunded.",
):
    """Only an AI reply that cost tokens can be refunded."""


class AlreadyRefunded(
    ChatError, status=409, code="already_refunded", message="This reply was refunded already."
):
    """A reply is refunded at most once."""


class RefundLimitReached(
    ChatError,
    status=429,
    code="refund_limit_reached",
    message="You have asked for as many refunds as allowed today.",
):
    """Refunds per person are capped per day (``REPLY_REFUNDS_PER_DAY``)."""

    def __init__(self, *, limit: int) -> None:
        super().__init__(
            f"At most {limit} refund(s) in 24 hours; please try again later.", limit=limit
        )


class MessageEmpty(ChatError, status=422, code="validation_error"):
    def __init__(self, *, max_chars: int) -> None:
        super().__init__(
            f"The message is empty; write 1 to {max_chars} characters.",
            field="content",
            reason="empty",
            max_chars=max_chars,
        )


class MessageTooLong(ChatError, status=422, code="validation_error"):
    def __init__(self, *, max_chars: int, length: int) -> None:
        super().__init__(
            f"The message is {length} characters long; the limit is {max_chars}.",
            field="content",
            reason="too_long",
            max_chars=max_chars,
            length=length,
        )


class AIUnavailable(
    ChatError,
    status=502,
    code="ai_unavailable",
    message="The AI did not answer; nothing was charged. Please try again.",
):
    """No usable reply was produced, so nothing was charged and nothing was saved.

    ``reason`` is ``timeout``, ``empty_reply``, ``unavailable`` or ``hold_expired`` (the
    hold ran out, or was lost with a database crash, before the reply could be charged);
    ``detail`` is the provider's finer machine code (``server_error``, ``rate_limited``...).
    """

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason=reason, detail=detail or reason)
        self.reason = reason

    @classmethod
    def from_provider(cls, exc: ProviderError) -> AIUnavailable:
        if isinstance(exc, ProviderTimeout):
            return cls("timeout", exc.reason)
        if isinstance(exc, EmptyReply):
            return cls("empty_reply", exc.reason)
        return cls("unavailable", exc.reason)


class GenerationInProgress(
    ChatError,
    status=409,
    code="generation_in_progress",
    message="A reply for this Idempotency-Key is still being generated.",
):
    """One idempotency key runs one generation at a time."""

    headers = {"Retry-After": "1"}


class GenerationRetriesExhausted(
    ChatError,
    status=409,
    code="generation_retries_exhausted",
    message="Too many failed attempts with this Idempotency-Key; send with a new key.",
):
    """Failed attempts under one key are bounded; a fresh key starts over."""


class HoldShorterThanAITimeout(ConfigError, ValueError):
    """A hold must outlive the provider's deadline, or a slow success could not be charged."""
