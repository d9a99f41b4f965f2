"""Payment errors, each named after the rule it guards.

PaymentError
├── UnknownTier (422)
├── PaymentNotFound (404)
│   ├── PaymentMethodNotFound (404) a saved card that is not the caller's (or gone)
│   └── StripeObjectUnusable    Stripe refuses the id or has no such object: an event
│                               naming it can never be applied (never retry it)
├── WebhookSignatureInvalid (400), WebhookPayloadInvalid (400)
├── NoSavedCard (409)            auto top-up needs a saved card to charge
├── PaymentsNotConfigured (503)
├── StripeUnavailable (503)    retry later
└── StripeRequestRefused (502) our request was wrong: retrying as is will not help,
                               but a fixed deployment may, so events stay retryable

A reused Idempotency-Key is the shared :class:`tokenbank.errors.IdempotencyKeyReused`.
"""

from __future__ import annotations

from tokenbank.errors import AppError


class PaymentError(AppError):
    """Base of every payment rule violation."""


class UnknownTier(PaymentError, status=422, code="unknown_tier", message="No such pricing tier."):
    """The client names a pack; prices only ever come from the server's tiers."""


class PaymentNotFound(
    PaymentError, status=404, code="payment_not_found", message="No such payment."
):
    """Someone else's payment looks exactly like one that does not exist."""


class StripeObjectUnusable(PaymentNotFound):
    """An id Stripe refuses (``pi_../x``) or an object Stripe does not have (400/404).

    To a person it is the same 404 as any payment they cannot see. To the webhook inbox
    it means the event can never be applied: acknowledge it, record ``reason``, and never
    retry it (a retry would ask Stripe the same question and get the same answer).
    """

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class PaymentMethodNotFound(
    PaymentNotFound, code="payment_method_not_found", message="No such saved card."
):
    """A saved card someone else owns looks exactly like one that does not exist."""


class NoSavedCard(
    PaymentError,
    status=409,
    code="no_saved_card",
    message="Save a card (buy a pack and tick “save this card”) before turning on auto top-up.",
):
    """Auto top-up buys off-session with a saved card: there must be one."""


class WebhookSignatureInvalid(
    PaymentError,
    status=400,
    code="invalid_signature",
    message="The Stripe-Signature header is missing, wrong or too old.",
):
    """Only events signed with our webhook secret, recently, are read at all."""


class WebhookPayloadInvalid(
    PaymentError,
    status=400,
    code="invalid_payload",
    message="The webhook body is not a Stripe event.",
):
    ...


class PaymentsNotConfigured(
    PaymentError,
    status=503,
    code="payments_not_configured",
    message="Payments are not configured on this server.",
):
    """No Stripe secret key is set, so nothing can be bought."""


class StripeUnavailable(
    PaymentError,
    status=503,
    code="stripe_unavailable",
    message="The payment provider is not answering; try again shortly.",
):
    """Stripe did not answer (network, timeout, 5xx, rate limit): retry later, never a 500."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": "5"}


class StripeRequestRefused(
    PaymentError,
    status=502,
    code="stripe_error",
    message="The payment provider refused the request.",
):
    """Stripe refused a request we made (bad key, bad parameters): our fault, not the user's."""
