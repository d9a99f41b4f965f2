"""Service API errors (the ledger's and payments' own errors cross it unchanged).

Each class line says its status, code and message; the whole tree is in
:mod:`tokenbank.errors`.
"""

from __future__ import annotations

from tokenbank.errors import AppError


class V1Error(AppError):
    """Base of every service API rule."""


class CustomerNotFound(
    V1Error,
    status=404,
    code="customer_not_found",
    message="No customer has this external id; create it with PUT first.",
):
    ...


class HoldNotFound(V1Error, status=404, code="hold_not_found", message="No such hold."):
    """Unknown, or not a hold of this app's customers: the same answer either way."""


class CustomerConflict(
    V1Error,
    status=409,
    code="customer_conflict",
    message="This external id cannot be used for a customer.",
):
    ...


class ReturnUrlNotAllowed(
    V1Error,
    status=422,
    code="return_url_not_allowed",
    message="return_url must be on one of the origins in WIDGET_ALLOWED_ORIGINS.",
):
    ...


class WidgetTokenInvalid(
    V1Error,
    status=401,
    code="invalid_widget_token",
    message="The customer token is missing, invalid or expired.",
):
    headers: dict[str, str] | None = {"WWW-Authenticate": "Bearer"}


class WidgetsNotConfigured(
    V1Error,
    status=404,
    code="widgets_not_configured",
    message="Widget tokens are not configured (WIDGET_TOKEN_SECRET or WIDGET_JWKS_URL).",
):
    """The widget routes are off (as development-only routes are in production)."""


class CheckoutTokenInvalid(
    V1Error,
    status=401,
    code="invalid_checkout_token",
    message="This payment link is invalid or has expired.",
):
    ...


class JwksUnavailable(
    WidgetsNotConfigured,
    status=503,
    code="jwks_unavailable",
    message="The host's signing keys (WIDGET_JWKS_URL) could not be fetched.",
):
    """The host's keys could not be fetched: a dependency is down, never a pass."""
