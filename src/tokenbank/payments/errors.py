"""Payment errors, each named after the rule it guards."""

from __future__ import annotations

from tokenbank.errors import AppError


class PaymentError(AppError):
    """Base of every payment rule violation."""


class UnknownTier(PaymentError):
    """The client names a pack; prices only ever come from the server's tiers."""

    status_code = 422
    code = "unknown_tier"
    message = "No such pricing tier."


class PaymentNotFound(PaymentError):
    """Someone else's payment looks exactly like one that does not exist."""

    status_code = 404
    code = "payment_not_found"
    message = "No such payment."


class PaymentIdempotencyKeyReused(PaymentError):
    """One Idempotency-Key names one purchase; reusing it for another tier is refused."""

    status_code = 409
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different purchase."


class WebhookSignatureInvalid(PaymentError):
    """Only events signed with our webhook secret, recently, are read at all."""

    status_code = 400
    code = "invalid_signature"
    message = "The Stripe-Signature header is missing, wrong or too old."


class WebhookPayloadInvalid(PaymentError):
    status_code = 400
    code = "invalid_payload"
    message = "The webhook body is not a Stripe event."


class PaymentsNotConfigured(PaymentError):
    """No Stripe secret key is set, so nothing can be bought."""

    status_code = 503
    code = "payments_not_configured"
    message = "Payments are not configured on this server."


class StripeUnavailable(PaymentError):
    """Stripe did not answer (network, timeout, 5xx, rate limit): retry later, never a 500."""

    status_code = 503
    code = "stripe_unavailable"
    message = "The payment provider is not answering; try again shortly."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": "5"}


class StripeRequestRefused(PaymentError):
    """Stripe refused a request we made (bad key, bad parameters): our fault, not the user's."""

    status_code = 502
    code = "stripe_error"
    message = "The payment provider refused the request."
