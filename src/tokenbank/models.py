"""Imports every table so that ``Base.metadata`` is complete (Alembic and checks use it)."""

from tokenbank.apikeys.models import ApiKey
from tokenbank.auth.models import AuthSession, AuthThrottle, EmailToken, RefreshToken, User
from tokenbank.chat.models import Chat, Message
from tokenbank.db import Base
from tokenbank.ledger.models import (
    TokenAccount,
    TokenLot,
    TokenLotMove,
    TokenReservation,
    TokenReservationLot,
    TokenTransaction,
)
from tokenbank.payments.models import Payment, WebhookEvent
from tokenbank.ratelimit.models import RateLimitBucket
from tokenbank.v1.models import Customer

__all__ = [
    "ApiKey",
    "AuthSession",
    "AuthThrottle",
    "Base",
    "Chat",
    "Customer",
    "EmailToken",
    "Message",
    "Payment",
    "RateLimitBucket",
    "RefreshToken",
    "TokenAccount",
    "TokenLot",
    "TokenLotMove",
    "TokenReservation",
    "TokenReservationLot",
    "TokenTransaction",
    "User",
    "WebhookEvent",
]
