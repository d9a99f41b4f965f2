"""Refunding an AI reply: its owner gives a reason and gets back what the reply cost.

Takes the request's session and never commits. The rules, in order of precedence:

========================================  ==============================================
not the caller's message (or no such)     :class:`MessageNotFound` (404)
not an AI reply that cost tokens          :class:`ReplyNotRefundable` (409)
refunded already                          :class:`AlreadyRefunded` (409)
``REPLY_REFUNDS_PER_DAY`` refunds in the  :class:`RefundLimitReached` (429)
last 24 hours
otherwise                                 a ``refund`` entry of the reply's cost, and
                                          its ``reply_refunds`` row (reason, note, model)
========================================  ==============================================

Guarantees:

- A reply is refunded at most once, whatever the concurrency: the ledger's key
  ``refund:<message id>`` (unique per user) and the unique ``reply_refunds.message_id``.
  Of two requests at once (a double click), the second finds the first's entry — the
  ledger's conditional UPDATE on the account row makes it wait for the first to commit —
  and answers 409, having written nothing.
- The daily cap holds under concurrency too: the cap is counted again after the
  refund's own balance change, which holds the account row's lock until the unit
  commits, so refunds of one person are counted one after the other.
- A refund gives back exactly what the reply was charged, never more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tokenbank.chat import repository as repo
from tokenbank.chat.errors import (
    AlreadyRefunded,
    MessageNotFound,
    RefundLimitReached,
    ReplyNotRefundable,
)
from tokenbank.chat.models import RefundReason
from tokenbank.ledger import keys
from tokenbank.ledger import service as ledger
from tokenbank.types import utcnow

#: The window of the per-person cap (``REPLY_REFUNDS_PER_DAY``).
REFUND_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Refunded:
    tokens: int
    #: Tokens available after the refund.
    balance: int
    transaction_id: int


async def refund_reply(
    session: AsyncSession,
    *,
    user_id: int,
    chat_id: int,
    message_id: int,
    reason: RefundReason,
    note: str | None,
    per_day: int,
) -> Refunded:
    """Give back what the reply cost (see the module docstring for the rules)."""
    message = await repo.owned_message(session, user_id, chat_id, message_id)
    if message is None:
        raise MessageNotFound()
    tokens = int(message["tokens_charged"])
    if message["role"] != "assistant" or tokens <= 0:
        raise ReplyNotRefundable()
    if await repo.is_refunded(session, message_id):
        raise AlreadyRefunded()
    now = utcnow()
    if await repo.count_refunds_since(session, user_id, now - REFUND_WINDOW) >= per_day:
        raise RefundLimitReached(limit=per_day)
    entry = await ledger.refund(
        session,
        user_id,
        tokens,
        f"Refund of an AI reply in chat {chat_id} ({reason})",
        idempotency_key=keys.reply_refund(message_id),
    )
    if entry.replayed:  # a request at the same moment refunded it first
        raise AlreadyRefunded()
    recorded = await repo.insert_refund(
        session,
        {
            "message_id": message_id,
            "user_id": user_id,
            "chat_id": chat_id,
            "transaction_id": entry.id,
            "reason": reason,
            "note": note,
            "model": message["model"],
            "tokens": tokens,
            "created_at": now,
        },
    )
    if not recorded:  # pragma: no cover - the ledger's key refused the second one above
        raise AlreadyRefunded()
    # Counted again under the account row's lock (taken by the refund's UPDATE): a
    # refund committed meanwhile by another request of this person is seen now.
    if await repo.count_refunds_since(session, user_id, now - REFUND_WINDOW) > per_day:
        raise RefundLimitReached(limit=per_day)
    available = (await ledger.balance(session, user_id)).available
    return Refunded(tokens=tokens, balance=available, transaction_id=entry.id)
