"""Imports every table so that ``Base.metadata`` is complete (Alembic and checks use it)."""

from tokenbank.apikeys.models import ApiKey
from tokenbank.auth.models import AuthSession, AuthThrottle, EmailToken, RefreshToken, User
from tokenbank.chat.models import Chat, Message, ReplyRefund
from tokenbank.db import Base
from tokenbank.ledger.models import (
    TokenAccount,
    TokenLot,
    TokenLotMove,
    TokenReservation,
    TokenReservationLot,
    TokenTransaction,
)
from tokenbank.meter.models import MeterHold
from tokenbank.notifications.models import (
    LotExpiryAlert,
    Notification,
    NotificationSettings,
)
from tokenbank.outbound.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEndpoint
from tokenbank.payments.models import (
    AutoTopup,
    AutoTopupSettings,
    Payment,
    WebhookEvent,
)
from tokenbank.pricing.models import PriceVersion
from tokenbank.ratelimit.models import RateLimitBucket
from tokenbank.subscriptions.models import Subscription, SubscriptionInvoice
from tokenbank.v1.models import Customer

__all__ = [
    "ApiKey",
    "AuthSession",
    "AutoTopup",
    "AutoTopupSettings",
    "AuthThrottle",
    "Base",
    "Chat",
    "Customer",
    "EmailToken",
    "Message",
    "MeterHold",
    "LotExpiryAlert",
    "Notification",
    "NotificationSettings",
    "Payment",
    "PriceVersion",
    "RateLimitBucket",
    "RefreshToken",
    "ReplyRefund",
    "Subscription",
    "SubscriptionInvoice",
    "TokenAccount",
    "TokenLot",
    "TokenLotMove",
    "TokenReservation",
    "TokenReservationLot",
    "TokenTransaction",
    "User",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
    "WebhookEndpoint",
    "WebhookEvent",
]
