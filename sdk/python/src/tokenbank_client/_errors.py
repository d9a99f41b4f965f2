"""Typed errors, one class per error code the service API reports.

    TokenbankError
    ├── APIConnectionError        no answer (after the retries): refused, reset, cut
    │   └── APITimeoutError       no answer in time
    └── APIError                  the server answered {"error": {"code", "message", ...}}
        ├── BadRequest            400
        ├── AuthenticationError   401  (a missing, unknown or revoked key)
        ├── InsufficientTokens    402  insufficient_tokens (.balance, .required)
        ├── PermissionDenied      403
        │   └── InsufficientScope 403  insufficient_scope
        ├── NotFound              404
        │   ├── CustomerNotFound  404  customer_not_found (make it with upsert_customer)
        │   └── HoldNotFound      404  hold_not_found / reservation_not_found
        ├── Conflict              409
        │   ├── IdempotencyKeyReused  409  the key was used for a different request
        │   ├── IdempotencyKeyInUse   409  the first request with this key is still running
        │   └── HoldNotPending    409  the hold was already committed or released
        │       └── HoldExpired   409
        ├── ValidationError       422
        │   ├── InvalidAmount     422  invalid_amount
        │   ├── UnknownTier       422  unknown_tier
        │   └── ReturnUrlNotAllowed 422  return_url_not_allowed
        ├── RateLimited           429  (.retry_after_s)
        └── ServerError           5xx
            └── ServiceUnavailable 503

The code decides the class; the status only when the code is one this version does not
know, so a new server error code still lands on the right branch of the tree.
"""

from __future__ import annotations

from typing import Any


class TokenbankError(Exception):
    """Base of every error this package raises."""


class APIConnectionError(TokenbankError):
    """The server could not be reached or the connection broke before an answer."""


class APITimeoutError(APIConnectionError):
    """The server did not answer in time."""


class APIError(TokenbankError):
    """The server answered with an error body."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.body: dict[str, Any] = body or {}
        self.headers: dict[str, str] = headers or {}

    @property
    def details(self) -> dict[str, Any]:
        """The extra fields of the error object (besides code and message)."""
        error = self.body.get("error")
        if not isinstance(error, dict):
            return {}
        return {k: v for k, v in error.items() if k not in ("code", "message")}


class BadRequest(APIError):
    pass


class AuthenticationError(APIError):
    pass


class InsufficientTokens(APIError):
    """Not enough available tokens; nothing was charged or held."""

    @property
    def balance(self) -> int | None:
        value = self.details.get("balance")
        return value if isinstance(value, int) else None

    @property
    def required(self) -> int | None:
        value = self.details.get("required")
        return value if isinstance(value, int) else None


class PermissionDenied(APIError):
    pass


class InsufficientScope(PermissionDenied):
    pass


class NotFound(APIError):
    pass


class CustomerNotFound(NotFound):
    pass


class HoldNotFound(NotFound):
    pass


class Conflict(APIError):
    pass


class IdempotencyKeyReused(Conflict):
    pass


class IdempotencyKeyInUse(Conflict):
    pass


class HoldNotPending(Conflict):
    @property
    def status(self) -> str | None:
        value = self.details.get("status")
        return value if isinstance(value, str) else None


class HoldExpired(HoldNotPending):
    pass


class ValidationError(APIError):
    pass


class InvalidAmount(ValidationError):
    pass


class UnknownTier(ValidationError):
    pass


class ReturnUrlNotAllowed(ValidationError):
    pass


class RateLimited(APIError):
    @property
    def retry_after_s(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class ServerError(APIError):
    pass


class ServiceUnavailable(ServerError):
    pass


BY_CODE: dict[str, type[APIError]] = {
    "insufficient_tokens": InsufficientTokens,
    "insufficient_scope": InsufficientScope,
    "customer_not_found": CustomerNotFound,
    "hold_not_found": HoldNotFound,
    "reservation_not_found": HoldNotFound,
    "idempotency_key_reused": IdempotencyKeyReused,
    "idempotency_key_in_use": IdempotencyKeyInUse,
    "hold_not_pending": HoldNotPending,
    "reservation_not_pending": HoldNotPending,
    "hold_expired": HoldExpired,
    "reservation_expired": HoldExpired,
    "invalid_amount": InvalidAmount,
    "unknown_tier": UnknownTier,
    "return_url_not_allowed": ReturnUrlNotAllowed,
    "rate_limited": RateLimited,
}

BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: AuthenticationError,
    402: InsufficientTokens,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
    429: RateLimited,
    503: ServiceUnavailable,
}


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare for APIs; the back-off applies instead
    return max(seconds, 0.0)


def error_for(status_code: int, body: Any, headers: dict[str, str]) -> APIError:
    """The typed error for an error response (``body`` is its parsed JSON, or None)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "unknown_error")
        message = str(error.get("message") or "")
    else:
        code, message = "unknown_error", f"HTTP {status_code}"
    cls = BY_CODE.get(code) or BY_STATUS.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else APIError
    return cls(status_code, code, message, body if isinstance(body, dict) else None, headers)
