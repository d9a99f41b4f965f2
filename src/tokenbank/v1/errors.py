"""Service API errors (the ledger's and payments' own errors cross it unchanged).

V1Error (400)
├── CustomerNotFound (404 customer_not_found)
├── HoldNotFound (404 hold_not_found)
├── CustomerConflict (409 customer_conflict)
├── ReturnUrlNotAllowed (422 return_url_not_allowed)
├── WidgetTokenInvalid (401 invalid_widget_token)
├── WidgetsNotConfigured (404 widgets_not_configured)
│   └── JwksUnavailable (503 jwks_unavailable)
└── CheckoutTokenInvalid (401 invalid_checkout_token)
"""

from __future__ import annotations

from tokenbank.errors import AppError


class V1Error(AppError):
    """Base of every service API rule."""


class CustomerNotFound(V1Error):
    status_code = 404
    code = "customer_not_found"
    message = "No customer has this external id; create it with PUT first."


class HoldNotFound(V1Error):
    """Unknown, or not a hold of this app's customers: the same answer either way."""

    status_code = 404
    code = "hold_not_found"
    message = "No such hold."


class CustomerConflict(V1Error):
    status_code = 409
    code = "customer_conflict"
    message = "This external id cannot be used for a customer."


class ReturnUrlNotAllowed(V1Error):
    status_code = 422
    code = "return_url_not_allowed"
    message = "return_url must be on one of the origins in WIDGET_ALLOWED_ORIGINS."


class WidgetTokenInvalid(V1Error):
    status_code = 401
    code = "invalid_widget_token"
    message = "The customer token is missing, invalid or expired."
    headers: dict[str, str] | None = {"WWW-Authenticate": "Bearer"}


class WidgetsNotConfigured(V1Error):
    """The widget routes are off (as development-only routes are in production)."""

    status_code = 404
    code = "widgets_not_configured"
    message = "Widget tokens are not configured (WIDGET_TOKEN_SECRET or WIDGET_JWKS_URL)."


class CheckoutTokenInvalid(V1Error):
    status_code = 401
    code = "invalid_checkout_token"
    message = "This payment link is invalid or has expired."


class JwksUnavailable(WidgetsNotConfigured):
    """The host's keys could not be fetched: a dependency is down, never a pass."""

    status_code = 503
    code = "jwks_unavailable"
    message = "The host's signing keys (WIDGET_JWKS_URL) could not be fetched."
