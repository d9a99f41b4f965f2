"""Errors rendered exactly as Stripe renders them, one class per rule guarded.

Stripe's body is ``{"error": {"type", "code", "decline_code", "message", "param",
"doc_url", ...}}`` and the SDK picks its exception class from the HTTP status
(400/404 InvalidRequestError, 401 AuthenticationError, 402 CardError) and the
``type`` (``idempotency_error``).
"""

from __future__ import annotations

from typing import Any


def doc_url(code: str) -> str:
    """Stripe's page for an error code (``card_declined`` → ``.../card-declined``)."""
    return f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"


class StripeApiError(Exception):
    """Base of every error the ``/v1`` API answers with."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code: str | None = None
    # Refused while checking parameters, before the endpoint started: Stripe keeps
    # no idempotent result for it.
    validation = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = doc_url(self.code)
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": dict(sorted(error.items()))}


class ApiKeyMissing(StripeApiError):
    status_code = 401

    def __init__(self) -> None:
        super().__init__(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details."
        )


class ApiKeyInvalid(StripeApiError):
    status_code = 401

    def __init__(self, key: str) -> None:
        shown = f"{key[:8]}{'*' * 12}{key[-4:]}" if len(key) > 12 else key
        super().__init__(f"Invalid API Key provided: {shown}", code="api_key_invalid")


class SecretKeyRequired(StripeApiError):
    status_code = 401
    default_code = "secret_key_required"

    def __init__(self) -> None:
        super().__init__(
            "This API call cannot be made with a publishable API key. Please use a secret API key."
        )


class UnrecognizedUrl(StripeApiError):
    status_code = 404

    def __init__(self, method: str, path: str) -> None:
        super().__init__(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs."
        )


class ResourceMissing(StripeApiError):
    status_code = 404
    default_code = "resource_missing"

    def __init__(self, kind: str, object_id: str, param: str = "id") -> None:
        super().__init__(f"No such {kind}: '{object_id}'", param=param)


class ParameterUnknown(StripeApiError):
    validation = True
    default_code = "parameter_unknown"

    def __init__(self, param: str) -> None:
        super().__init__(f"Received unknown parameter: {param}", param=param)


class ParameterMissing(StripeApiError):
    validation = True
    default_code = "parameter_missing"

    def __init__(self, param: str) -> None:
        super().__init__(f"Missing required param: {param}.", param=param)


class ParameterInvalid(StripeApiError):
    """A value of the wrong type or outside its allowed set."""

    validation = True

    def __init__(self, message: str, param: str, code: str = "parameter_invalid_string") -> None:
        super().__init__(message, param=param, code=code)


class AmountTooSmall(StripeApiError):
    validation = True
    default_code = "amount_too_small"


class AmountTooLarge(StripeApiError):
    validation = True
    default_code = "amount_too_large"


class PaymentIntentUnexpectedState(StripeApiError):
    default_code = "payment_intent_unexpected_state"


class ClientSecretMismatch(StripeApiError):
    def __init__(self) -> None:
        super().__init__(
            "The client_secret provided does not match any associated PaymentIntent "
            "on this account.",
            param="client_secret",
        )


class ChargeAlreadyRefunded(StripeApiError):
    default_code = "charge_already_refunded"


class RefundExceedsCharge(StripeApiError):
    """A refund larger than what is captured and not yet refunded."""

    default_code = "amount_too_large"


class ChargeDisputed(StripeApiError):
    default_code = "charge_disputed"


class DisputeAlreadyClosed(StripeApiError):
    pass


class FeatureNotSimulated(StripeApiError):
    """A real Stripe feature this simulator deliberately does not model."""

    validation = True


class IdempotencyKeyReused(StripeApiError):
    error_type = "idempotency_error"

    def __init__(self, key: str) -> None:
        super().__init__(
            "Keys for idempotent requests can only be used with the same parameters "
            f"they were first used with. Try using a key other than '{key}' if you "
            "meant to execute a different request."
        )


class IdempotencyKeyInUse(StripeApiError):
    """The key's first request is still running (Stripe answers 409)."""

    status_code = 409
    default_code = "idempotency_key_in_use"

    def __init__(self, key: str) -> None:
        super().__init__(
            "There is currently another in-progress request using this idempotency key "
            f"('{key}'); that probably means you submitted twice and the other request is "
            "still going through. Please try again later."
        )


class CardError(StripeApiError):
    """402 ``card_error``: invalid card details or a declined payment."""

    status_code = 402
    error_type = "card_error"
