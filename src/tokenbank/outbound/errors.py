"""Outbound webhook errors: each class line says its status, code and message; the whole
tree is in :mod:`tokenbank.errors`.
"""

from __future__ import annotations

from tokenbank.errors import AppError


class OutboundError(AppError):
    """Base of every outbound webhook rule."""


class WebhookEndpointNotFound(
    OutboundError,
    status=404,
    code="webhook_endpoint_not_found",
    message="No such webhook endpoint.",
):
    ...


class WebhookDeliveryNotFound(
    OutboundError,
    status=404,
    code="webhook_delivery_not_found",
    message="No such webhook delivery.",
):
    ...


class WebhookUrlRefused(
    OutboundError,
    status=422,
    code="webhook_url_refused",
    message="Webhook endpoints must be public https URLs.",
):
    """Events go to public https URLs only (outside development): a URL on this machine
    or a private network would let whoever configures it reach internal services (SSRF)."""


class UnknownEventType(
    OutboundError, status=422, code="unknown_event_type", message="Unknown event type."
):
    ...
