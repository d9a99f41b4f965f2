"""tokenbank-client: the Python client of tokenbank's service API (``/api/v1``).

    from tokenbank_client import AsyncTokenbank, InsufficientTokens

    billing = AsyncTokenbank("tbk_...", base_url="https://tokens.example.com")
    async with billing.hold(user_id, 5) as hold:
        reply = await my_model(prompt)
        hold.use(tokens_for(reply))        # commit less than held; the rest is released

Every write carries an idempotency key (yours, or one generated per call) and is retried
on connection errors, 5xx and 429 with the same key, so a retry never charges twice.
"""

from tokenbank_client._async import AsyncTokenbank
from tokenbank_client._core import new_idempotency_key
from tokenbank_client._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequest,
    Conflict,
    CustomerNotFound,
    HoldExpired,
    HoldNotFound,
    HoldNotPending,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InsufficientScope,
    InsufficientTokens,
    InvalidAmount,
    NotFound,
    PermissionDenied,
    RateLimited,
    ReturnUrlNotAllowed,
    ServerError,
    ServiceUnavailable,
    TokenbankError,
    UnknownTier,
    ValidationError,
)
from tokenbank_client._hold import ActiveHold
from tokenbank_client._models import (
    Balance,
    Committed,
    Customer,
    Hold,
    Posted,
    Purchase,
    Released,
    Transaction,
    TransactionPage,
)
from tokenbank_client._sync import Tokenbank
from tokenbank_client._transport import async_http_client, http_client
from tokenbank_client._webhooks import WebhookVerificationError, verify_webhook
from tokenbank_client._widget import customer_token

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "ActiveHold",
    "AsyncTokenbank",
    "AuthenticationError",
    "BadRequest",
    "Balance",
    "Conflict",
    "Customer",
    "CustomerNotFound",
    "Committed",
    "Hold",
    "HoldExpired",
    "HoldNotFound",
    "HoldNotPending",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InsufficientScope",
    "InsufficientTokens",
    "InvalidAmount",
    "NotFound",
    "PermissionDenied",
    "Posted",
    "Purchase",
    "RateLimited",
    "Released",
    "ReturnUrlNotAllowed",
    "ServerError",
    "ServiceUnavailable",
    "TokenbankError",
    "Tokenbank",
    "Transaction",
    "TransactionPage",
    "UnknownTier",
    "ValidationError",
    "WebhookVerificationError",
    "async_http_client",
    "customer_token",
    "http_client",
    "new_idempotency_key",
    "verify_webhook",
]
__version__ = "0.1.0"
